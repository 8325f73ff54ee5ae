//! Cron triggers: `scheduled()` in each of its forms run through
//! `outpost dev`'s `/__scheduled` and `/cdn-cgi/handler/scheduled`, and
//! triggers firing on their own schedule on a moved clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_edge::scheduled::{CronTrigger, dev_trigger, fire_on_schedule, next_firing};
use outpost_protocol::cron::utc_text;
use outpost_runtime::ScheduledEvent;
use outpost_runtime::{WorkerBundle, WorkerEnv, WorkerVersion, spawn_executor};

use crate::util::{DevProcess, http1};

/// A folder with `worker.js` and a wrangler.toml with `crons`.
fn project(worker: &str, crons: &[&str]) -> tempfile::TempDir {
  let dir = tempfile::tempdir().expect("temp dir");
  std::fs::write(dir.path().join("worker.js"), worker).expect("worker.js");
  let crons: Vec<String> = crons.iter().map(|c| format!("{c:?}")).collect();
  std::fs::write(
    dir.path().join("wrangler.toml"),
    format!(
      "name = \"cron\"\nmain = \"worker.js\"\n[vars]\nWHO = \"cron\"\n[triggers]\ncrons = [{}]\n",
      crons.join(", ")
    ),
  )
  .expect("wrangler.toml");
  dir
}

async fn get(url: &str) -> (u16, String) {
  let response = http1().get(url).send().await.expect("request");
  let status = response.status().as_u16();
  (status, response.text().await.expect("body"))
}

const MODULE: &str = r#"
export default {
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(Promise.resolve());
    controller.noRetry();
    console.log(`ran ${controller.cron} at ${controller.scheduledTime} by ${env.WHO} (${controller.type})`);
    if (controller.cron === "fail") throw new Error("scheduled failure");
  },
  fetch() {
    return new Response("fetched");
  },
};
"#;

async fn expect_line(dev: &DevProcess, line: &str) {
  let stderr = dev.wait_for_stderr(line, Duration::from_secs(10)).await;
  assert!(stderr.contains(line), "{line:?} not in:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_runs_scheduled_handlers_by_hand() {
  let dir = project(MODULE, &["0 0 1 1 *"]);
  let dev = DevProcess::start(dir.path(), &[]).await;
  let base = dev.url.trim_end_matches('/');
  expect_line(&dev, "cron triggers 0 0 1 1 * fire on schedule").await;

  let (status, body) = get(&format!("{base}/__scheduled?cron=*/5+*+*+*+*&time=1234")).await;
  assert_eq!((status, body.as_str()), (200, "Ran scheduled event\n"));
  expect_line(&dev, "ran */5 * * * * at 1234 by cron (scheduled)").await;
  let (status, _) = get(&format!("{base}/cdn-cgi/handler/scheduled?cron=0+*+*+*+*")).await;
  assert_eq!(status, 200);
  expect_line(&dev, "ran 0 * * * * at ").await;
  let (status, body) = get(&format!("{base}/__scheduled?cron=fail")).await;
  assert_eq!(status, 500, "{body}");
  expect_line(&dev, "Error: scheduled failure").await;
  // Other paths still reach fetch().
  assert_eq!(get(&format!("{base}/x")).await, (200, "fetched".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_form_of_scheduled_handler_runs() {
  let forms = [
    (
      "service worker",
      r#"addEventListener("scheduled", (event) => {
        event.waitUntil(Promise.resolve());
        console.log(`listener ran ${event.cron} at ${event.scheduledTime}`);
      });"#,
      "listener ran * * * * * at 99",
    ),
    (
      "entrypoint class",
      r#"import { WorkerEntrypoint } from "cloudflare:workers";
      export default class extends WorkerEntrypoint {
        scheduled(controller) { console.log(`class ran ${controller.cron} for ${this.env.WHO}`); }
        fetch() { return new Response("class"); }
      }"#,
      "class ran * * * * * for cron",
    ),
    (
      "scheduled only",
      r#"export default { scheduled(controller) { console.log(`only ran at ${controller.scheduledTime}`); } };"#,
      "only ran at 99",
    ),
  ];
  for (form, worker, line) in forms {
    let dir = project(worker, &[]);
    let dev = DevProcess::start(dir.path(), &[]).await;
    let base = dev.url.trim_end_matches('/');
    let (status, body) = get(&format!("{base}/__scheduled?time=99")).await;
    assert_eq!(status, 200, "{form}: {body}");
    expect_line(&dev, line).await;
    if form == "scheduled only" {
      let (status, _) = get(&format!("{base}/")).await;
      assert_eq!(status, 500, "a request to a worker without fetch()");
      expect_line(&dev, "no fetch handler, only a scheduled one").await;
    }
  }

  // A worker with no scheduled handler fails the firing, saying why.
  let dir = project(
    "export default { fetch() { return new Response('x'); } };",
    &[],
  );
  let dev = DevProcess::start(dir.path(), &[]).await;
  let (status, _) = get(&format!("{}__scheduled", dev.url)).await;
  assert_eq!(status, 500);
  expect_line(&dev, "no scheduled handler").await;
}

#[test]
fn a_bad_cron_is_refused_with_the_file_and_key() {
  let dir = project(MODULE, &["every minute"]);
  let out = crate::util::outpost()
    .args(["dev", "--port", "0"])
    .current_dir(dir.path())
    .output()
    .expect("outpost dev runs");
  let stderr = String::from_utf8_lossy(&out.stderr);
  assert!(!out.status.success());
  assert!(
    stderr.contains("wrangler.toml")
      && stderr.contains("triggers.crons")
      && stderr.contains("every minute"),
    "{stderr}"
  );
}

/// 2026-12-06 (a Sunday) 10:00:00 UTC.
const SUNDAY_10AM: u64 = 1_796_551_200_000;
const MINUTE: u64 = 60_000;

#[tokio::test(start_paused = true)]
async fn triggers_fire_on_schedule_on_a_moved_clock() {
  let dir = tempfile::tempdir().expect("temp dir");
  let entry = dir.path().join("worker.js");
  // Throws (failing the firing) unless given a whole minute and a known cron.
  std::fs::write(
    &entry,
    "export default { scheduled(c) { if (c.scheduledTime % 60000 !== 0 || !['* * * * *', '*/2 * * * *'].includes(c.cron)) throw new Error(`bad firing ${c.cron} ${c.scheduledTime}`); } };\n",
  )
  .expect("worker.js");
  let executor = spawn_executor("cron-test").expect("executor");
  let version = WorkerVersion {
    bundle: Arc::new(WorkerBundle::load(&entry).expect("bundle")),
    env: Arc::new(WorkerEnv::default()),
    limits: Default::default(),
  };
  executor.install("cron", version).await.expect("installs");
  let triggers = vec![
    CronTrigger::parse("* * * * *").expect("cron"),
    CronTrigger::parse("*/2 * * * *").expect("cron"),
  ];
  let fired: Arc<Mutex<Vec<(String, u64, bool)>>> = Arc::default();
  let done = Arc::new(tokio::sync::Notify::new());
  let record = {
    let fired = fired.clone();
    let done = done.clone();
    move |cron: &str, due: u64, outcome: outpost_edge::scheduled::ScheduledOutcome| {
      let mut fired = fired.lock().expect("fired");
      fired.push((cron.to_owned(), (due - SUNDAY_10AM) / MINUTE, outcome.ok));
      if fired.len() == 5 {
        done.notify_one();
      }
    }
  };
  // Half a second before 10:00, with five simulated minutes to run.
  let stop = {
    let done = done.clone();
    async move { done.notified().await }
  };
  fire_on_schedule(
    executor,
    "cron".into(),
    triggers,
    SUNDAY_10AM - 500,
    record,
    stop,
  )
  .await;
  let fired = fired.lock().expect("fired").clone();
  let want: Vec<(String, u64, bool)> = [
    ("* * * * *", 0),
    ("*/2 * * * *", 0),
    ("* * * * *", 1),
    ("* * * * *", 2),
    ("*/2 * * * *", 2),
  ]
  .iter()
  .map(|(cron, minute)| ((*cron).to_owned(), *minute, true))
  .collect();
  assert_eq!(fired, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn deployed_triggers_are_listed_with_their_next_firing() {
  let data = tempfile::tempdir().expect("temp dir");
  let control = crate::cluster::Control::start(&data.path().join("control"), 0, 0, None);
  let dir = project(MODULE, &["*/5 * * * *", "0 12 * * 1"]);
  let run = |args: &[&str]| {
    crate::util::outpost()
      .args(args)
      .args(["--url", &control.api, "--token", &control.admin])
      .current_dir(dir.path())
      .output()
      .expect("outpost runs")
  };
  let deployed = run(&["deploy"]);
  let stderr = String::from_utf8_lossy(&deployed.stderr);
  assert!(deployed.status.success(), "{stderr}");
  assert!(!stderr.contains("warning"), "{stderr}");
  let listed = run(&["triggers", "list"]);
  let out = String::from_utf8_lossy(&listed.stdout);
  assert!(
    listed.status.success(),
    "{}",
    String::from_utf8_lossy(&listed.stderr)
  );
  let five = out
    .lines()
    .find(|l| l.contains("*/5 * * * *"))
    .unwrap_or_else(|| panic!("{out}"));
  // The next five-minute mark, in UTC, as RFC 3339.
  let next = five.split_whitespace().last().expect("a time");
  assert!(next.ends_with(":00Z") && next.contains('T'), "{five}");
  let minute: u32 = next[14..16].parse().expect("minutes");
  assert_eq!(minute % 5, 0, "{five}");
  assert!(out.contains("0 12 * * 1"), "{out}");

  // A bundle with a pattern that is not one is refused at upload.
  let bundle = serde_json::json!({
    "main": "worker.js",
    "modules": { "worker.js": "export default { scheduled() {} };" },
    "crons": ["every minute"],
  });
  let (status, body) = control
    .call(
      reqwest::Method::POST,
      "/workers/cron/versions",
      Some(bundle),
    )
    .await;
  assert_eq!(status, 400, "{body}");
  assert!(body.to_string().contains("bad cron trigger"), "{body}");
}

// Workers' cron patterns (outpost_protocol::cron) and the dev trigger paths.

#[test]
fn patterns_read_as_workers_reads_them() {
  let every_minute = CronTrigger::parse("* * * * *").expect("parses");
  assert_eq!(
    every_minute.next_after(SUNDAY_10AM),
    Some(SUNDAY_10AM + MINUTE)
  );
  assert_eq!(
    every_minute.next_after(SUNDAY_10AM + 1),
    Some(SUNDAY_10AM + MINUTE)
  );
  // Weekday 1 is Sunday, as Cloudflare counts.
  let sunday_5pm = CronTrigger::parse("0 17 * * 1").expect("parses");
  assert_eq!(
    sunday_5pm.next_after(SUNDAY_10AM),
    Some(SUNDAY_10AM + 7 * 60 * MINUTE)
  );
  let sun = CronTrigger::parse("0 17 * * sun").expect("parses");
  assert_eq!(
    sun.next_after(SUNDAY_10AM),
    sunday_5pm.next_after(SUNDAY_10AM)
  );
  // The last Friday of the month: 2026-12-25.
  let last_friday = CronTrigger::parse("0 18 * * 6L").expect("parses");
  let christmas_6pm = SUNDAY_10AM + 19 * 24 * 60 * MINUTE + 8 * 60 * MINUTE;
  assert_eq!(last_friday.next_after(SUNDAY_10AM), Some(christmas_6pm));
  assert!(CronTrigger::parse("* * * *").is_err());
  assert!(
    CronTrigger::parse("0 0 * * * *").is_err(),
    "no seconds field"
  );
  assert!(CronTrigger::parse("61 * * * *").is_err());
}

#[test]
fn the_next_firing_gathers_the_triggers_due_together() {
  let triggers = [
    CronTrigger::parse("*/5 * * * *").expect("parses"),
    CronTrigger::parse("*/15 * * * *").expect("parses"),
  ];
  let (at, due) = next_firing(&triggers, SUNDAY_10AM).expect("a firing");
  assert_eq!(at, SUNDAY_10AM + 5 * MINUTE);
  assert_eq!(due.len(), 1);
  let (at, due) = next_firing(&triggers, SUNDAY_10AM + 10 * MINUTE).expect("a firing");
  assert_eq!(at, SUNDAY_10AM + 15 * MINUTE);
  assert_eq!(due.len(), 2);
}

#[test]
fn times_read_as_utc() {
  assert_eq!(utc_text(SUNDAY_10AM), "2026-12-06T10:00:00Z");
}

#[test]
fn dev_paths_take_cron_and_time() {
  let event = dev_trigger("/__scheduled", Some("cron=*/5+*+*+*+*&time=42"), 7).expect("a firing");
  assert_eq!(
    event,
    ScheduledEvent {
      cron: "*/5 * * * *".into(),
      scheduled_time_ms: 42
    }
  );
  let event = dev_trigger("/cdn-cgi/handler/scheduled", None, 7).expect("a firing");
  assert_eq!(event.scheduled_time_ms, 7);
  assert!(dev_trigger("/other", None, 7).is_none());
}
