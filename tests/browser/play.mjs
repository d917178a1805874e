// Opens the server's page in headless Chromium, presses Play, and checks that audio bytes
// streamed in and the waveform was drawn. Usage: node play.mjs http://127.0.0.1:PORT/ SECONDS
// [SCREENSHOT]; PRIME in the environment picks the prime menu's option with that value, CLIP
// (a file) uploads that clip instead (the status line is the result when nothing plays), and
// TOP_K types into the top-k control. The JSON body the page sent is reported too.
import { chromium } from "playwright-core";

const [url, seconds] = [process.argv[2], process.argv[3] || "1"];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage();
  let sent = null;
  page.on("request", (request) => { if (request.url().endsWith("/v1/generate")) sent = JSON.parse(request.postData()); });
  await page.goto(url);
  await page.waitForFunction(() => !document.getElementById("model").textContent.startsWith("loading"));
  // The sampling controls take their defaults and bounds from /openapi.json once it has loaded.
  await page.waitForFunction(() => document.getElementById("top_k").max !== "");
  const controls = await page.evaluate(() => Object.fromEntries(["temperature", "top_k"].map((id) => {
    const input = document.getElementById(id);
    return [id, { value: input.value, max: input.max, label: input.parentElement.textContent.trim() }];
  })));
  if (process.env.TOP_K !== undefined) await page.fill("#top_k", process.env.TOP_K);
  await page.fill("#seconds", seconds);
  if (process.env.PRIME !== undefined) await page.selectOption("#prime", process.env.PRIME);
  if (process.env.CLIP !== undefined) {
    await page.selectOption("#prime", "upload");
    await page.setInputFiles("#clip", process.env.CLIP);
  }
  await page.click("#play");
  // Done playing, or an answer that is not audio (the status line says why).
  await page.waitForFunction(() => {
    const status = document.getElementById("status").textContent;
    return status.startsWith("done") || !(status.startsWith("generating") || status.includes(" received"));
  }, null, { timeout: 60000 });
  const result = await page.evaluate(() => {
    const canvas = document.getElementById("wave");
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    // The rows the waveform reaches: at true scale they follow the samples' peaks.
    let top = canvas.height, bottom = -1;
    for (let i = 3; i < pixels.length; i += 4) {
      if (pixels[i] > 0) {
        painted++;
        const y = Math.floor((i - 3) / 4 / canvas.width);
        top = Math.min(top, y); bottom = Math.max(bottom, y);
      }
    }
    return { bytes: Number(document.body.dataset.bytes), drawn: Number(document.body.dataset.drawn), painted,
             top, bottom, height: canvas.height, rms_dbfs: Number(document.body.dataset.rmsDbfs),
             level: document.getElementById("level").textContent,
             primes: [...document.getElementById("prime").options].map((o) => o.value),
             status: document.getElementById("status").textContent };
  });
  if (process.argv[4]) await page.screenshot({ path: process.argv[4] });  // optional: look at it
  console.log(JSON.stringify({ ...result, controls, sent }));
} finally {
  await browser.close();
}
