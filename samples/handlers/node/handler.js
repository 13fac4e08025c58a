// A Kattle handler webhook in plain Node.js (no dependencies), written from
// docs/protocol.md alone: it proves handlers need no Python and no SDK.
//
//   node samples/handlers/node/handler.js [--host 127.0.0.1] [--port 8081] [--key-file /path/to/signing-key]
//
// It answers every ProcessEvent: `pre` listeners approve, handlers add a greeting to the
// process data and to the object's status, and with --key-file it refuses requests whose
// signature does not match: the Standard Webhooks headers (webhook-id, webhook-timestamp,
// webhook-signature: HMAC-SHA256 over "<id>.<timestamp>.<body>", base64), or Kattle's older
// X-Kattle-Signature (HMAC-SHA256 over "<timestamp>.<body>", hex) from an older operator.
// A key file holding "whsec_<base64>" is a Standard Webhooks secret; any other content is
// the key itself, as in the ProcessHandler's Secret.
"use strict";
const http = require("http");
const crypto = require("crypto");
const fs = require("fs");

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const host = option("--host", "127.0.0.1");
const port = Number(option("--port", "8081"));
const keyFile = option("--key-file", null);
const key = keyFile ? fs.readFileSync(keyFile) : null;
const TOLERANCE_SECONDS = 300;

// What Kattle strips from the Secret's value before using it as a Standard Webhooks key.
const trimmed = (bytes) => {
  const blank = new Set([9, 10, 11, 12, 13, 32]);
  let start = 0;
  let end = bytes.length;
  while (start < end && blank.has(bytes[start])) start++;
  while (end > start && blank.has(bytes[end - 1])) end--;
  return bytes.subarray(start, end);
};

function standardKey() {
  const text = trimmed(key).toString("latin1");
  return text.startsWith("whsec_") ? Buffer.from(text.slice(6), "base64") : trimmed(key);
}

function matches(offered, expected) {
  const want = Buffer.from(expected);
  return offered.some((s) => s.length === want.length && crypto.timingSafeEqual(Buffer.from(s), want));
}

function verify(req, body) {
  if (!key) return null;
  const standard = req.headers["webhook-signature"] !== undefined;
  const timestamp = req.headers[standard ? "webhook-timestamp" : "x-kattle-timestamp"];
  if (!timestamp) return "the request is not signed";
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) return "stale signature";
  if (standard) {
    const id = req.headers["webhook-id"] || "";
    const mac = crypto.createHmac("sha256", standardKey()).update(`${id}.${timestamp}.`).update(body).digest("base64");
    return matches(req.headers["webhook-signature"].split(" "), `v1,${mac}`) ? null : "the signature does not match";
  }
  const signatures = (req.headers["x-kattle-signature"] || "").split(",").map((s) => s.trim());
  const mac = crypto.createHmac("sha256", key).update(`${timestamp}.`).update(body).digest("hex");
  return matches(signatures, `v1=${mac}`) ? null : "the signature does not match";
}

function reply(event) {
  const name = event.resource.metadata.name;
  if (event.phase === "pre") return { message: `node approves ${event.process} on ${name}` };
  // Derived from the event only, so a retry with the same idempotencyKey gets the same answer.
  const greeting = `hello from node, ${name}`;
  return { data: { greeting }, status: { greeting }, message: "greeted" };
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") {
    res.writeHead(200).end("ok");
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const refused = verify(req, body);
    res.setHeader("Content-Type", "application/json");
    if (refused) {
      res.writeHead(401).end(JSON.stringify({ error: `refused: ${refused}` }));
      return;
    }
    try {
      res.writeHead(200).end(JSON.stringify(reply(JSON.parse(body))));
    } catch (err) {
      res.writeHead(200).end(JSON.stringify({ error: `node handler failed: ${err.message}` }));
    }
  });
});
server.listen(port, host, () => console.log(`kattle node handler on ${host}:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
