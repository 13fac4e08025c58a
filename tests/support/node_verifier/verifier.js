// A handler that checks each request with the npm Standard Webhooks library, as a handler
// author in another language would: tests/integration/test_signed_requests.py runs it.
//
//   node verifier.js PORT SECRET_FILE   (SECRET_FILE holds a whsec_... secret)
"use strict";
const http = require("http");
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const [port, secretFile] = process.argv.slice(2);
const webhook = new Webhook(fs.readFileSync(secretFile, "utf8").trim());

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      res.setHeader("Content-Type", "application/json");
      try {
        const event = webhook.verify(Buffer.concat(chunks), req.headers);
        res.writeHead(200).end(JSON.stringify({ data: { verifiedBy: "standardwebhooks (npm)", id: req.headers["webhook-id"], step: event.idempotencyKey } }));
      } catch (err) {
        res.writeHead(401).end(JSON.stringify({ error: `refused by standardwebhooks (npm): ${err.message}` }));
      }
    });
  })
  .listen(Number(port), "127.0.0.1", () => console.log("ready"));
process.on("SIGTERM", () => process.exit(0));
