// A worker with a cron trigger (see wrangler.toml) as well as requests.
export default {
  async scheduled(controller, env, ctx) {
    console.log(`cron ${controller.cron} at ${new Date(controller.scheduledTime).toISOString()}`);
  },

  async fetch(request, env, ctx) {
    return new Response("This worker runs on a schedule; see wrangler.toml.\n");
  },
};
