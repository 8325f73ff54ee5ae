//! Static assets (`[assets]`): create-cloudflare's assets template under
//! `outpost dev`; a Vite-built single-page app with an API worker deployed
//! as one version to a control plane and an edge, redeployed without
//! uploading unchanged bytes; and the serving rules (HTML handling, 404
//! pages, ETag, ranges, compression) on a folder of our own.

use std::path::Path;

use outpost_protocol::assets::{
  AssetAnswer, AssetFile, AssetManifest, HtmlHandling, MAX_ASSET_BYTES, NotFoundHandling,
};
use reqwest::header::{self, HeaderMap};

use crate::npm_projects::{c3_template, control_and_edge, deploy_folder, npm_fixture};
use crate::util::{DevProcess, http1};

/// GET `url` with `headers`: status, headers, body.
async fn fetch(url: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
  // Redirects are what is tested: not followed.
  let client = reqwest::Client::builder()
    .redirect(reqwest::redirect::Policy::none())
    .http1_only()
    .build()
    .expect("client");
  let mut request = client.get(url);
  for (name, value) in headers {
    request = request.header(*name, *value);
  }
  let response = request.send().await.expect("request");
  let status = response.status().as_u16();
  let headers = response.headers().clone();
  (
    status,
    headers,
    response.bytes().await.expect("body").to_vec(),
  )
}

fn text(body: &[u8]) -> String {
  String::from_utf8_lossy(body).into_owned()
}

fn header_of<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
  headers
    .get(name)
    .and_then(|v| v.to_str().ok())
    .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn create_cloudflares_assets_template_serves_public_and_the_worker_in_dev() {
  let project = c3_template("assets-js");
  let dev = DevProcess::start(project.path(), &[]).await;
  let page = std::fs::read(project.path().join("public/index.html")).expect("index.html");

  let (status, headers, body) = fetch(&dev.url, &[]).await;
  assert_eq!(
    (status, body),
    (200, page.clone()),
    "/ is public/index.html"
  );
  assert_eq!(
    header_of(&headers, "content-type"),
    "text/html; charset=utf-8"
  );
  let (status, _, body) = fetch(&format!("{}message", dev.url), &[]).await;
  assert_eq!((status, text(&body).as_str()), (200, "Hello, World!"));
  let (status, _, body) = fetch(&format!("{}nothing-here", dev.url), &[]).await;
  assert_eq!(
    (status, text(&body).as_str()),
    (404, "Not Found"),
    "no asset: the worker answers"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_cloudflares_assets_only_template_runs_in_dev_and_deploys() {
  let project = c3_template("assets-only");
  let page = std::fs::read(project.path().join("public/index.html")).expect("index.html");
  let dev = DevProcess::start(project.path(), &[]).await;
  let (status, _, body) = fetch(&dev.url, &[]).await;
  assert_eq!((status, &body), (200, &page));
  let (status, _, body) = fetch(&format!("{}missing", dev.url), &[]).await;
  assert_eq!((status, body.len()), (404, 0));
  drop(dev);

  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, edge) = control_and_edge(data.path());
  let (line, _) = deploy_counting(&control, project.path());
  assert!(line.starts_with("assets: 1 file(s), 1 uploaded"), "{line}");
  let host = [("host", "assets-only.localhost")];
  let (status, _, body) = fetch(&format!("{edge}/"), &host).await;
  assert_eq!((status, &body), (200, &page));
  let (status, _, _) = fetch(&format!("{edge}/missing"), &host).await;
  assert_eq!(status, 404);
}

/// `outpost deploy` in `dir`; the numbers on its assets line.
fn deploy_counting(control: &crate::cluster::Control, dir: &Path) -> (String, String) {
  let out = deploy_folder(control, dir);
  let line = out
    .lines()
    .find(|l| l.starts_with("assets:"))
    .unwrap_or_else(|| panic!("no assets line in {out}"))
    .to_owned();
  (line, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vite_spa_with_an_api_worker_deploys_as_one_version_and_redeploys_without_bytes() {
  let project = npm_fixture("vite-spa");
  let dist = project.path().join("dist");
  assert!(
    dist.join("index.html").is_file(),
    "vite-spa is not built: run scripts/npm-fixtures.sh"
  );
  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, edge) = control_and_edge(data.path());

  let (line, out) = deploy_counting(&control, project.path());
  let files = walk(&dist);
  assert!(
    line.starts_with(&format!("assets: {files} file(s), {files} uploaded")),
    "{line}"
  );
  assert!(out.contains("uploaded vite-spa v1"), "{out}");
  let host = [("host", "vite-spa.localhost")];
  let index = std::fs::read(dist.join("index.html")).expect("index.html");

  let (status, headers, body) = fetch(&format!("{edge}/"), &host).await;
  assert_eq!((status, &body), (200, &index), "/ is index.html");
  let etag = header_of(&headers, "etag").to_owned();
  assert!(etag.starts_with('"'), "{headers:?}");
  let navigate = [
    ("host", "vite-spa.localhost"),
    ("sec-fetch-mode", "navigate"),
  ];
  let (status, _, body) = fetch(&format!("{edge}/deep/link"), &navigate).await;
  assert_eq!(
    (status, &body),
    (200, &index),
    "a page load of a deep link gets the app"
  );
  let (status, _, body) = fetch(&format!("{edge}/api/x"), &navigate).await;
  let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON from the worker");
  assert_eq!(status, 200);
  assert_eq!(answer["path"], "/api/x", "run_worker_first sends /api/* on");
  let (status, _, _) = fetch(&format!("{edge}/deep/link"), &host).await;
  assert_eq!(
    status, 404,
    "a script's request for a missing path reaches the worker"
  );
  // The built bundle, by its hashed name.
  let script = std::fs::read_dir(dist.join("assets"))
    .expect("dist/assets")
    .filter_map(Result::ok)
    .map(|e| e.file_name().to_string_lossy().into_owned())
    .find(|name| name.ends_with(".js"))
    .expect("a built script");
  let (status, headers, body) = fetch(&format!("{edge}/assets/{script}"), &host).await;
  assert_eq!(status, 200);
  assert_eq!(
    header_of(&headers, "content-type"),
    "text/javascript; charset=utf-8"
  );
  assert_eq!(
    body,
    std::fs::read(dist.join("assets").join(&script)).expect("script")
  );
  let (status, _, body) = fetch(
    &format!("{edge}/"),
    &[("host", "vite-spa.localhost"), ("if-none-match", &etag)],
  )
  .await;
  assert_eq!((status, body.len()), (304, 0));

  // Unchanged: no asset bytes go up, and no new version is made.
  let (line, out) = deploy_counting(&control, project.path());
  assert!(line.contains(", 0 uploaded (0 bytes)"), "{line}");
  assert!(out.contains("(unchanged)"), "{out}");

  // One file changed: only it goes up, in a new version.
  let favicon = dist.join("favicon.svg");
  let mut svg = std::fs::read_to_string(&favicon).expect("favicon");
  svg.push_str("<!-- v2 -->\n");
  std::fs::write(&favicon, &svg).expect("favicon");
  let (line, out) = deploy_counting(&control, project.path());
  assert!(
    line.contains(&format!(", 1 uploaded ({} bytes)", svg.len())),
    "{line}"
  );
  assert!(out.contains("uploaded vite-spa v2"), "{out}");
  let (status, _, body) = fetch(&format!("{edge}/favicon.svg"), &host).await;
  assert_eq!((status, text(&body)), (200, svg));
}

fn walk(dir: &Path) -> usize {
  std::fs::read_dir(dir)
    .expect("dir")
    .filter_map(Result::ok)
    .map(|entry| {
      if entry.path().is_dir() {
        walk(&entry.path())
      } else {
        1
      }
    })
    .sum()
}

const SITE_WORKER: &str = r#"export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/from-binding") {
      const asset = await env.ASSETS.fetch(new URL("/about", request.url));
      return new Response(`binding: ${asset.status} ${await asset.text()}`);
    }
    return new Response("worker", { status: 200 });
  },
};
"#;

/// A project whose assets exercise the serving rules, with `settings`
/// added to `[assets]`.
fn site(settings: &str) -> tempfile::TempDir {
  let dir = tempfile::tempdir().expect("temp dir");
  let root = dir.path();
  std::fs::write(root.join("worker.js"), SITE_WORKER).expect("worker");
  std::fs::write(
    root.join("wrangler.toml"),
    format!(
      "name = \"site\"\nmain = \"worker.js\"\n\n[assets]\ndirectory = \"public\"\nbinding = \"ASSETS\"\n{settings}\n"
    ),
  )
  .expect("wrangler.toml");
  let public = root.join("public");
  for (path, body) in [
    ("about.html", "about page".to_owned()),
    ("docs/index.html", "docs index".to_owned()),
    ("404.html", "top 404".to_owned()),
    ("docs/404.html", "docs 404".to_owned()),
    ("big.txt", "0123456789".repeat(1000)),
    ("app.js", "console.log('plain');".to_owned()),
    ("app.js.br", "pretend-brotli".to_owned()),
    ("file name.txt", "spaced".to_owned()),
  ] {
    let file = public.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, body).expect("asset");
  }
  dir
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_follow_html_handling_ranges_etags_and_compression() {
  let project = site("");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.trim_end_matches('/').to_owned();
  let get = |path: &'static str| fetch_at(&url, path, &[]);

  // auto-trailing-slash: pretty URLs serve, the others redirect to them.
  assert_eq!(get("/about").await.0, 200);
  let (status, headers, _) = get("/about.html?x=1").await;
  assert_eq!(
    (status, header_of(&headers, "location")),
    (307, "/about?x=1")
  );
  assert_eq!(text(&get("/docs/").await.2), "docs index");
  let (status, headers, _) = get("/docs").await;
  assert_eq!((status, header_of(&headers, "location")), (307, "/docs/"));
  assert_eq!(text(&get("/file%20name.txt").await.2), "spaced");
  // Not an asset: the worker.
  assert_eq!(text(&get("/elsewhere").await.2), "worker");
  // The binding reaches the assets alone.
  assert_eq!(
    text(&get("/from-binding").await.2),
    "binding: 200 about page"
  );

  // Ranges of the identity bytes.
  let (status, headers, body) = fetch_at(&url, "/big.txt", &[("range", "bytes=10-19")]).await;
  assert_eq!((status, text(&body).as_str()), (206, "0123456789"));
  assert_eq!(header_of(&headers, "content-range"), "bytes 10-19/10000");
  let (status, _, body) = fetch_at(&url, "/big.txt", &[("range", "bytes=-5")]).await;
  assert_eq!((status, text(&body).as_str()), (206, "56789"));
  let (status, headers, _) = fetch_at(&url, "/big.txt", &[("range", "bytes=20000-")]).await;
  assert_eq!(
    (status, header_of(&headers, "content-range")),
    (416, "bytes */10000")
  );

  // gzip made for a compressible file; a precompressed sibling preferred.
  let (status, headers, body) = fetch_at(&url, "/big.txt", &[("accept-encoding", "gzip")]).await;
  assert_eq!(status, 200);
  assert_eq!(header_of(&headers, "content-encoding"), "gzip");
  let mut plain = String::new();
  std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
    .expect("gzip");
  assert_eq!(plain, "0123456789".repeat(1000));
  let (_, headers, body) = fetch_at(&url, "/app.js", &[("accept-encoding", "gzip, br")]).await;
  assert_eq!(
    (
      header_of(&headers, "content-encoding"),
      text(&body).as_str()
    ),
    ("br", "pretend-brotli")
  );
  assert_eq!(
    header_of(&headers, "content-type"),
    "text/javascript; charset=utf-8"
  );
  let (_, headers, body) = fetch_at(&url, "/app.js", &[("accept-encoding", "br;q=0")]).await;
  assert_eq!(
    (
      header_of(&headers, "content-encoding"),
      text(&body).as_str()
    ),
    ("", "console.log('plain');")
  );
  // HEAD: the length, no body.
  let response = http1()
    .head(format!("{url}/big.txt"))
    .send()
    .await
    .expect("HEAD");
  assert_eq!(
    response
      .headers()
      .get(header::CONTENT_LENGTH)
      .and_then(|v| v.to_str().ok()),
    Some("10000")
  );
}

async fn fetch_at(url: &str, path: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
  fetch(&format!("{url}{path}"), headers).await
}

/// A manifest of `paths`, served as `options` says.
fn manifest(paths: &[&str], options: AssetManifest) -> AssetManifest {
  let files = paths
    .iter()
    .map(|path| {
      let file = AssetFile {
        hash: "0".repeat(64),
        size: 1,
      };
      ((*path).to_owned(), file)
    })
    .collect();
  AssetManifest { files, ..options }
}

fn file(path: &str, status: u16) -> AssetAnswer {
  AssetAnswer::File {
    path: path.to_owned(),
    status,
  }
}

#[test]
fn not_found_handling_html_handling_and_run_worker_first_answer_as_workers_does() {
  let paths = [
    "/index.html",
    "/404.html",
    "/blog/404.html",
    "/blog/post.html",
    "/guide/index.html",
  ];
  // Assets only, 404 pages: the nearest one up the path.
  let pages = manifest(
    &paths,
    AssetManifest {
      not_found_handling: NotFoundHandling::Page404,
      has_worker: false,
      ..Default::default()
    },
  );
  assert_eq!(
    pages.answer("/blog/missing", false),
    file("/blog/404.html", 404)
  );
  assert_eq!(
    pages.answer("/blog/deep/er", false),
    file("/blog/404.html", 404)
  );
  assert_eq!(pages.answer("/other", false), file("/404.html", 404));
  assert_eq!(
    pages.answer("/blog/post", false),
    file("/blog/post.html", 200)
  );
  // Single-page app without a worker: every miss is the index.
  let spa = manifest(
    &paths,
    AssetManifest {
      not_found_handling: NotFoundHandling::SinglePageApplication,
      has_worker: false,
      ..Default::default()
    },
  );
  assert_eq!(spa.answer("/a/b", false), file("/index.html", 200));
  // With a worker, only a page load is the index; run_worker_first with an
  // exclusion.
  let spa_worker = manifest(
    &paths,
    AssetManifest {
      not_found_handling: NotFoundHandling::SinglePageApplication,
      run_worker_first: vec!["/api/*".into(), "!/api/docs".into()],
      ..Default::default()
    },
  );
  assert_eq!(spa_worker.answer("/a/b", true), file("/index.html", 200));
  assert_eq!(spa_worker.answer("/a/b", false), AssetAnswer::Worker);
  assert_eq!(spa_worker.answer("/api/x", true), AssetAnswer::Worker);
  assert_eq!(
    spa_worker.answer("/api/docs", true),
    file("/index.html", 200)
  );
  // Trailing slashes forced and dropped.
  let force = manifest(
    &paths,
    AssetManifest {
      html_handling: HtmlHandling::ForceTrailingSlash,
      ..Default::default()
    },
  );
  assert_eq!(
    force.answer("/blog/post", false),
    AssetAnswer::Redirect("/blog/post/".into())
  );
  assert_eq!(
    force.answer("/blog/post/", false),
    file("/blog/post.html", 200)
  );
  let drop = manifest(
    &paths,
    AssetManifest {
      html_handling: HtmlHandling::DropTrailingSlash,
      ..Default::default()
    },
  );
  assert_eq!(
    drop.answer("/guide/", false),
    AssetAnswer::Redirect("/guide".into())
  );
  assert_eq!(drop.answer("/guide", false), file("/guide/index.html", 200));
  let exact = manifest(
    &paths,
    AssetManifest {
      html_handling: HtmlHandling::None,
      has_worker: false,
      ..Default::default()
    },
  );
  assert_eq!(exact.answer("/blog/post", false), AssetAnswer::NotFound);
  assert_eq!(
    exact.answer("/blog/post.html", false),
    file("/blog/post.html", 200)
  );
  // Limits, refused with the file named.
  let mut big = manifest(&["/huge.bin"], AssetManifest::default());
  if let Some(huge) = big.files.get_mut("/huge.bin") {
    huge.size = MAX_ASSET_BYTES + 1;
  }
  let refused = big.check().expect_err("over the size limit");
  assert!(refused.contains("/huge.bin"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outpost_dev_serves_the_assets_of_the_workers_it_runs_beside_the_first() {
  let root = tempfile::tempdir().expect("temp dir");
  let front = root.path().join("front");
  std::fs::create_dir_all(&front).expect("folder");
  // Bound to `shop`: its fetch() meets shop's assets first, as a client's
  // request would.
  std::fs::write(
    front.join("worker.js"),
    "export default { async fetch(request, env) { \
       const path = new URL(request.url).pathname; \
       if (path === '/') return new Response('front'); \
       const answer = await env.SHOP.fetch(`http://shop${path}`); \
       return new Response(`via front: ${await answer.text()}`); } };",
  )
  .expect("worker");
  std::fs::write(
    front.join("outpost.toml"),
    "[[services]]\nbinding = \"SHOP\"\nservice = \"shop\"\n",
  )
  .expect("config");
  // A second project of assets alone, and a third with a worker behind.
  let docs = root.path().join("docs");
  std::fs::create_dir_all(docs.join("public")).expect("folders");
  std::fs::write(
    docs.join("outpost.toml"),
    "name = \"docs\"\n[assets]\ndirectory = \"public\"\n",
  )
  .expect("config");
  std::fs::write(docs.join("public/index.html"), "<h1>docs</h1>").expect("asset");
  let shop = root.path().join("shop");
  std::fs::create_dir_all(shop.join("public")).expect("folders");
  std::fs::write(
    shop.join("outpost.toml"),
    "name = \"shop\"\nmain = \"worker.js\"\n[assets]\ndirectory = \"public\"\n",
  )
  .expect("config");
  std::fs::write(
    shop.join("worker.js"),
    "export default { fetch() { return new Response('shop worker'); } };",
  )
  .expect("worker");
  std::fs::write(shop.join("public/price.txt"), "42").expect("asset");

  let dev = DevProcess::start(root.path(), &["front", "docs", "shop"]).await;
  let client = http1();
  let port = dev
    .url
    .trim_end_matches('/')
    .rsplit(':')
    .next()
    .expect("a port")
    .to_owned();
  let get = |host: &'static str, path: &'static str| {
    let request = client
      .get(format!("{}{}", dev.url.trim_end_matches('/'), path))
      .header("host", format!("{host}:{port}"));
    async move {
      let response = request.send().await.expect("an answer");
      let status = response.status().as_u16();
      (status, response.text().await.expect("a body"))
    }
  };
  assert_eq!(
    get("docs.localhost", "/").await,
    (200, "<h1>docs</h1>".into())
  );
  assert_eq!(get("docs.localhost", "/missing").await.0, 404);
  assert_eq!(
    get("shop.localhost", "/price.txt").await,
    (200, "42".into())
  );
  assert_eq!(
    get("shop.localhost", "/cart").await,
    (200, "shop worker".into())
  );
  assert_eq!(get("localhost", "/").await, (200, "front".into()));
  assert_eq!(
    get("localhost", "/price.txt").await,
    (200, "via front: 42".into())
  );
  assert_eq!(
    get("localhost", "/cart").await,
    (200, "via front: shop worker".into())
  );
}
