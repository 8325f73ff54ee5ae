// Answers every request. `outpost dev` serves it on http://localhost:8787/;
// `outpost deploy` sends it to your edges.
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    return new Response(`${env.GREETING} from ${url.pathname}!\n`);
  },
};
