// What a cron trigger's firing gives a handler: the module form's
// `controller` (ScheduledController) and the service-worker form's
// ScheduledEvent. Outpost does not retry a failed firing, so noRetry()
// has nothing to suppress; it is recorded for the handler to read.
import { primordials } from "ext:core/mod.js";
import { event } from "ext:outpost_worker/00_globals.js";

const { TypeError } = primordials;

class ScheduledController {
  #cron;
  #scheduledTime;
  #noRetry = false;

  constructor(cron, scheduledTime) {
    this.#cron = cron;
    this.#scheduledTime = scheduledTime;
  }

  /** The trigger's cron pattern, as configured. */
  get cron() {
    return this.#cron;
  }

  /** When the firing was due, in milliseconds since the Unix epoch. */
  get scheduledTime() {
    return this.#scheduledTime;
  }

  get type() {
    return "scheduled";
  }

  get retryRequested() {
    return !this.#noRetry;
  }

  noRetry() {
    this.#noRetry = true;
  }
}

class ScheduledEvent extends event.Event {
  #controller;
  #ctx;

  constructor(controller, ctx) {
    super("scheduled");
    this.#controller = controller;
    this.#ctx = ctx;
  }

  get cron() {
    return this.#controller.cron;
  }

  get scheduledTime() {
    return this.#controller.scheduledTime;
  }

  noRetry() {
    this.#controller.noRetry();
  }

  waitUntil(promise) {
    this.#ctx.waitUntil(promise);
  }
}

/** Runs `addEventListener("scheduled", ...)` listeners for a firing. */
function serviceWorkerScheduled(controller, ctx) {
  if (event.listenerCount(globalThis, "scheduled") === 0) {
    throw new TypeError(
      'the worker has no scheduled handler: export default { scheduled(controller, env, ctx) } or call addEventListener("scheduled", ...)',
    );
  }
  globalThis.dispatchEvent(new ScheduledEvent(controller, ctx));
}

export { ScheduledController, ScheduledEvent, serviceWorkerScheduled };
