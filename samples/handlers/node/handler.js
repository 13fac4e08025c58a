// A Kattle handler webhook in plain Node.js (no dependencies), written from
// docs/protocol.md alone: it proves handlers need no Python and no SDK.
//
//   node samples/handlers/node/handler.js [--host 127.0.0.1] [--port 8081] [--key-file /path/to/signing-key]
//
// It answers every ProcessEvent: `pre` listeners approve, handlers add a greeting to the
// process data and to the object's status, and with --key-file it refuses requests whose
// X-Kattle-Signature does not match (HMAC-SHA256 over "<timestamp>.<body>").
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

function verify(req, body) {
  if (!key) return null;
  const timestamp = req.headers["x-kattle-timestamp"];
  const signatures = (req.headers["x-kattle-signature"] || "").split(",").map((s) => s.trim());
  if (!timestamp || !signatures[0]) return "the request is not signed";
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) return "stale signature";
  const mac = crypto.createHmac("sha256", key).update(`${timestamp}.`).update(body).digest("hex");
  const expected = Buffer.from(`v1=${mac}`);
  const ok = signatures.some((s) => s.length === expected.length &&
    crypto.timingSafeEqual(Buffer.from(s), expected));
  return ok ? null : "the signature does not match";
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
