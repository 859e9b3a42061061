// neostore ui: live job progress and a heartbeat that keeps the UI running
// while a page is open. Everything else works without script.
"use strict";

function sizeText(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? v + " B" : v.toFixed(1) + " " + units[i];
}

function timeText(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  const s = Math.round(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function showJob(job) {
  document.getElementById("job-state").textContent = job.state;
  const bar = document.getElementById("job-progress");
  if (job.state === "done") {
    bar.value = 100;
  } else if (job.total_bytes) {
    bar.value = Math.min(100, (100 * job.bytes) / job.total_bytes);
  } else if (job.total_bytes === 0 && job.total_files) {
    bar.value = Math.min(100, (100 * job.files) / job.total_files);
  }
  let counts = job.files + (job.total_files !== null ? " of " + job.total_files : "") + " files, " +
    sizeText(job.bytes) + (job.total_bytes !== null ? " of " + sizeText(job.total_bytes) : "") +
    ", " + sizeText(job.speed) + "/s, " + timeText(job.elapsed) + " elapsed";
  if (job.state === "running") counts += ", " + timeText(job.eta) + " left";
  document.getElementById("job-counts").textContent = counts;
  document.getElementById("job-current").textContent = job.state === "running" ? job.current : "";
  const messages = document.getElementById("job-messages");
  messages.replaceChildren();
  for (const text of job.errors.map((m) => "error: " + m).concat(job.warnings.map((m) => "warning: " + m))) {
    const li = document.createElement("li");
    li.textContent = text;
    messages.appendChild(li);
  }
  const result = document.getElementById("job-result");
  if (job.state === "done" || job.state === "failed" || job.state === "cancelled") {
    document.getElementById("cancel-form").hidden = true;
    result.replaceChildren();
    const p = document.createElement("span");
    p.textContent = job.message || (job.state === "done" ? "Finished." : "");
    result.appendChild(p);
    if (job.result && job.result.snapshot) {
      const a = document.createElement("a");
      a.href = "s/" + job.result.snapshot + "/";
      a.id = "new-snapshot";
      a.textContent = " Open the new snapshot " + job.result.snapshot.slice(0, 8);
      result.appendChild(a);
    }
    return false;
  }
  return true;
}

function followJob(element) {
  const url = "api/jobs/" + element.dataset.job;
  const poll = () => fetch(url, { credentials: "same-origin" })
    .then((r) => {
      if (r.status === 404 || r.status === 401) throw new Error("gone");  // no such job: stop
      return r.json().then((job) => { if (showJob(job)) setTimeout(poll, 400); });
    })
    .catch((e) => { if (e.message !== "gone") setTimeout(poll, 2000); });
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  const job = document.getElementById("job");
  if (job) followJob(job);
  setInterval(() => fetch("api/ping", { credentials: "same-origin" }).catch(() => {}), 30000);
});
