// whatsapp-api-js's own verify-and-parse over the benchmark corpus (fincelo make bench).
//
// Usage: node wa_api_js_intake.mjs CORPUS.json SECONDS; prints one JSON result.
//
// Per body, what the library's node:http middleware (handle_post) does once
// the body is read: `await api.post(JSON.parse(body), body, signature)`.
// post() verifies the HMAC with WebCrypto (crypto.subtle, async; the key is
// imported once and cached by the library), then reads entry[0].changes[0]
// and calls the registered on.message / on.status emitter with the parsed
// arguments. Errors are caught and mapped to a status as handle_post does.
// CPU time is the whole process's (process.cpuUsage), so any work WebCrypto
// hands to other threads is counted.
import { readFileSync } from "node:fs";
import { WhatsAppAPI } from "whatsapp-api-js/middleware/node-http";
import { NodeNext } from "whatsapp-api-js/setup/node";

const pkg = JSON.parse(
  readFileSync(new URL("./node_modules/whatsapp-api-js/package.json", import.meta.url), "utf-8"),
);
const corpus = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const secs = Number(process.argv[3]);
const bodies = corpus.bodies.map((b) => ({
  kind: b.kind,
  body: Buffer.from(b.body, "utf-8").toString("utf-8"),
  signature: b.signature,
}));

const api = new WhatsAppAPI(
  NodeNext({ token: "bench-token", appSecret: corpus.app_secret, webhookVerifyToken: "bench-verify" }),
);
const seen = {};
const count = (kind) => () => {
  seen[kind] = (seen[kind] ?? 0) + 1;
};
api.on.message = count("message");
api.on.status = count("status");

async function one(b) {
  try {
    await api.post(JSON.parse(b.body || "{}"), b.body, b.signature);
    return 200;
  } catch (e) {
    return e?.httpStatus ?? 500;
  }
}

const statuses = {};
for (const b of bodies) {
  const code = await one(b);
  const k = `${b.kind}:${code}`;
  statuses[k] = (statuses[k] ?? 0) + 1;
}
const perPass = { ...seen };
for (let i = 0; i < 20; i++) for (const b of bodies) await one(b);

let n = 0;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const budget = BigInt(Math.round(secs * 1e9));
while (process.hrtime.bigint() - t0 < budget) {
  for (const b of bodies) await one(b);
  n += bodies.length;
}
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const cpuU = process.cpuUsage(cpu0);
const cpu = (cpuU.user + cpuU.system) / 1e6;
console.log(JSON.stringify({
  implementation: `whatsapp-api-js ${pkg.version} (Node.js ${process.version})`,
  bodies: n, wall_secs: wall, cpu_secs: cpu,
  bodies_per_sec_wall: n / wall, bodies_per_cpu_sec: n / cpu,
  outcomes: { http_status_by_kind: statuses, emitter_calls_per_pass: perPass },
}));
