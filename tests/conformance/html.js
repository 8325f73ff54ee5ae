// HTMLRewriter (Cloudflare's API on lol_html): each handler kind, the unit
// methods, async handlers, selectors, and errors.
import { area } from "./harness.js";

export const html = area("html-rewriter");
const h = html.check.bind(html);

const rewrite = (rewriter, page) => rewriter.transform(new Response(page)).text();

h("element attributes: get, has, set, remove, iterate", async () => {
  let seen;
  const out = await rewrite(
    new HTMLRewriter().on("a", {
      element(el) {
        seen = [...el.attributes].map(([k, v]) => `${k}=${v}`).join(",");
        el.setAttribute("href", "/new").removeAttribute("id");
        if (!el.hasAttribute("class") || el.getAttribute("CLASS") !== "c") throw new Error("attributes");
      },
    }),
    '<a href="/old" id="x" class="c">t</a>',
  );
  return seen === "href=/old,id=x,class=c" && out === '<a href="/new" class="c">t</a>';
});
h("element content: before, after, prepend, append, setInnerContent", async () => {
  const out = await rewrite(
    new HTMLRewriter()
      .on("p", { element: (el) => el.before("<hr>", { html: true }).after("<b>").prepend("[").append("]") })
      .on("div", { element: (el) => el.setInnerContent("<em>new</em>", { html: true }) }),
    "<p>x</p><div>old <span>inner</span></div>",
  );
  return out === "<hr><p>[x]</p>&lt;b&gt;<div><em>new</em></div>";
});
h("remove, removeAndKeepContent and replace", async () => {
  const out = await rewrite(
    new HTMLRewriter()
      .on("script", { element: (el) => el.remove() })
      .on("span", { element: (el) => el.removeAndKeepContent() })
      .on("i", { element: (el) => el.replace("<u>u</u>", { html: true }) }),
    "<script>x()</script><span>kept</span><i>gone</i>",
  );
  return out === "kept<u>u</u>";
});
h("tagName is read and renamed", async () => {
  let name;
  const out = await rewrite(
    new HTMLRewriter().on("b", {
      element(el) {
        name = el.tagName;
        el.tagName = "strong";
      },
    }),
    "<b>x</b>",
  );
  return name === "b" && out === "<strong>x</strong>";
});
h("onEndTag", async () => {
  const out = await rewrite(
    new HTMLRewriter().on("ul", {
      element: (el) => el.onEndTag((end) => end.before("<li>last</li>", { html: true })),
    }),
    "<ul><li>a</li></ul>",
  );
  return out === "<ul><li>a</li><li>last</li></ul>";
});
h("text chunks", async () => {
  let text = "";
  let lastSeen = false;
  const out = await rewrite(
    new HTMLRewriter().on("h1", {
      text(chunk) {
        text += chunk.text;
        if (chunk.lastInTextNode) lastSeen = true;
        else chunk.replace(chunk.text.toUpperCase());
      },
    }),
    "<h1>hello</h1>",
  );
  return text === "hello" && lastSeen && out === "<h1>HELLO</h1>";
});
h("comments: read, change, remove", async () => {
  const seen = [];
  const out = await rewrite(
    new HTMLRewriter().on("div", {
      comments(c) {
        seen.push(c.text);
        if (c.text === "drop") c.remove();
        else c.text = "kept";
      },
    }),
    "<div><!--drop--><!--keep--></div>",
  );
  return seen.join() === "drop,keep" && out === "<div><!--kept--></div>";
});
h("document handlers: doctype, comments, text and end", async () => {
  let doctype;
  let text = "";
  const out = await rewrite(
    new HTMLRewriter().onDocument({
      doctype(d) {
        doctype = `${d.name}|${d.publicId}|${d.systemId}`;
      },
      comments: (c) => c.remove(),
      text(t) {
        text += t.text;
      },
      end: (end) => end.append("<!-- end -->", { html: true }),
    }),
    "<!DOCTYPE html><!--x--><p>a</p>b",
  );
  return doctype === "html|null|null" && text === "ab" && out === "<!DOCTYPE html><p>a</p>b<!-- end -->";
});
h("async handlers run in document order", async () => {
  const order = [];
  const out = await rewrite(
    new HTMLRewriter().on("li", {
      async element(el) {
        await new Promise((resolve) => setTimeout(resolve, el.getAttribute("id") === "1" ? 20 : 0));
        order.push(el.getAttribute("id"));
        el.setAttribute("data-done", "yes");
      },
    }),
    '<li id="1"></li><li id="2"></li>',
  );
  return order.join() === "1,2" && out === '<li id="1" data-done="yes"></li><li id="2" data-done="yes"></li>';
});
h("selectors: descendant, child, attribute operators, nth-child, not", async () => {
  const hits = [];
  const mark = (label) => ({ element: () => hits.push(label) });
  await rewrite(
    new HTMLRewriter()
      .on("div p", mark("descendant"))
      .on("div > span", mark("child"))
      .on('a[href^="https"]', mark("prefix"))
      .on('a[href$=".pdf"]', mark("suffix"))
      .on("li:nth-child(2)", mark("nth"))
      .on("p:not(.skip)", mark("not")),
    '<div><section><p class="skip"></p></section><span></span></div>' +
      '<a href="https://x/doc.pdf"></a><ul><li></li><li></li></ul><p></p>',
  );
  return hits.join() === "descendant,child,prefix,suffix,nth,not";
});
h("an invalid selector throws when registered", () => {
  try {
    new HTMLRewriter().on("p[", { element() {} });
    return "no throw";
  } catch (err) {
    return err instanceof TypeError && err.message.includes("invalid selector");
  }
});
h("a throwing handler errors the body", async () => {
  const failure = new Error("handler broke");
  try {
    await rewrite(new HTMLRewriter().on("p", { element() { throw failure; } }), "<p>x</p>");
    return "resolved";
  } catch (err) {
    return err === failure;
  }
});
h("units cannot be changed after their handler", async () => {
  let kept;
  await rewrite(new HTMLRewriter().on("p", { element: (el) => { kept = el; } }), "<p>x</p>");
  try {
    kept.setAttribute("late", "yes");
    return "no throw";
  } catch (err) {
    return err instanceof TypeError;
  }
});
h("transform keeps status and headers, drops content-length", async () => {
  const response = new HTMLRewriter().transform(
    new Response("<p>x</p>", { status: 201, headers: { "content-type": "text/html", "content-length": "8", "x-a": "b" } }),
  );
  return response.status === 201 && response.headers.get("x-a") === "b" &&
    response.headers.get("content-length") === null && (await response.text()) === "<p>x</p>";
});
h("a tag larger than the parser's memory bound errors the body", async () => {
  // The tag arrives in 1 MiB pieces, so the parser must hold it whole.
  const piece = new TextEncoder().encode("a".repeat(1 << 20));
  let sent = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (sent === 0) controller.enqueue(new TextEncoder().encode('<div data-x="'));
      if (sent++ < 17) controller.enqueue(piece);
      else controller.close();
    },
  });
  try {
    await rewrite(new HTMLRewriter().on("div", { element() {} }), body);
    return "resolved";
  } catch (err) {
    return err instanceof TypeError && /memory/i.test(err.message) ? true : `${err.name}: ${err.message}`;
  }
});
