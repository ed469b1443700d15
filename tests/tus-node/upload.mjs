// Uploads one file to ferry-gateway's tus endpoint with tus-js-client on Node,
// in chunks, retrying through cut connections and restarts (its retry
// counter starts again whenever the upload moves on). Driven by
// tests/e2e/tus_clients.rs.
//
//   node upload.mjs --endpoint http://HOST:PORT/uploads --file PATH --name NAME
//                   [--chunk-size BYTES] [--token TOKEN] [--encrypt]
//
// Prints `upload-url URL` once the upload exists, then one JSON line:
// {"url": ..., "item_id": ..., "item_location": ..., "retries": N}.
import { createReadStream } from "node:fs";
import { parseArgs } from "node:util";
import * as tus from "tus-js-client";

const { values: args } = parseArgs({
  options: {
    endpoint: { type: "string" },
    file: { type: "string" },
    name: { type: "string" },
    "chunk-size": { type: "string", default: String(8 * 1024 * 1024) },
    token: { type: "string" },
    encrypt: { type: "boolean", default: false },
  },
});
for (const required of ["endpoint", "file", "name"]) {
  if (!args[required]) {
    console.error(`--${required} is required`);
    process.exit(2);
  }
}

// Up to about two minutes of failures in a row (a restart takes a few seconds).
const retryDelays = [0, 100, 200, 500, 1000, ...Array(60).fill(2000)];
const metadata = { filename: args.name };
if (args.encrypt) metadata.encrypt = "true";
let retries = 0;
let item = { id: null, location: null };

const upload = new tus.Upload(createReadStream(args.file), {
  endpoint: args.endpoint,
  chunkSize: Number(args["chunk-size"]),
  retryDelays,
  metadata,
  headers: args.token ? { Authorization: `Bearer ${args.token}` } : {},
  onShouldRetry: (error, attempt, options) => {
    retries += 1;
    console.error(`failure ${retries} (attempt ${attempt}): ${error.message}`);
    const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
    // As tus-js-client's default: not a 4xx, except a conflict or a lock.
    return status < 400 || status >= 500 || status === 409 || status === 423;
  },
  onUploadUrlAvailable: () => console.log(`upload-url ${upload.url}`),
  onAfterResponse: (_request, response) => {
    const id = response.getHeader("Ferry-Item-Id");
    if (id) item = { id, location: response.getHeader("Ferry-Item-Location") ?? null };
  },
  onSuccess: () => {
    console.log(
      JSON.stringify({
        url: upload.url,
        item_id: item.id,
        item_location: item.location,
        retries,
      }),
    );
  },
  onError: (error) => {
    console.error(`upload failed: ${error.message}`);
    process.exitCode = 1;
  },
});
upload.start();
