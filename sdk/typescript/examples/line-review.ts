// The line-review workflow driven through the TypeScript SDK: the twin of
// `make demo`'s client side (scripts/demo.sh). Uploads a sample set and the
// line-review agent, submits the review job on the python-data image,
// follows its log, downloads the outputs, and checks the findings against
// the planted inconsistencies when given the generator's key.
//
//   node line-review.js <sample dir> <agent dir> <out dir> [expected.json]
//
// WARDEN_URL and WARDEN_API_KEY name the server and the tenant key.
import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { Warden, type File } from "warden-sdk";

async function main(): Promise<number> {
  const [sampleDir, agentDir, outDir, expectedPath] = process.argv.slice(2);
  if (!sampleDir || !agentDir || !outDir) {
    console.error("usage: line-review <sample dir> <agent dir> <out dir> [expected.json]");
    return 2;
  }
  const w = new Warden();
  const paths = (await readdir(sampleDir)).sort().map((n) => join(sampleDir, n));
  paths.push(...["agent.py", "readers.py", "report.py"].map((n) => join(agentDir, n)));

  console.log(`== uploading ${paths.length} files`);
  const files: File[] = [];
  for (const p of paths) {
    const f = await w.files.upload(basename(p), { path: p }, {
      onProgress: (sent, total) => total && sent === total && process.stdout.write(`  ${basename(p).padEnd(34)} ${total} bytes\n`),
    });
    files.push(f);
  }

  console.log("== review job (python-data image): following its log");
  const job = await w.reviews.submit({
    command: ["python3", "/input/agent.py"],
    files,
    image: "python-data",
    limits: { memory_mb: 1024, cpus: 1, pids: 128, disk_mb: 64 },
    timeoutSecs: 300,
  });
  console.log(`job ${job.id}`);
  for await (const text of job.follow()) process.stdout.write(text);
  const info = await job.wait({ timeoutMs: 600_000 });
  if (info.status !== "succeeded") {
    console.error(`the review job ended ${info.status}: ${info.error ?? ""}`);
    return 1;
  }

  console.log("== outputs");
  const saved = await job.downloadOutputs(outDir);
  for (const s of saved) console.log(`  ${s}`);

  if (expectedPath) {
    const expected = new Set<string>(JSON.parse(await readFile(expectedPath, "utf8")).findings.map((f: { id: string }) => f.id));
    const found = new Set<string>(JSON.parse(await readFile(join(outDir, "findings.json"), "utf8")).findings.map((f: { id: string }) => f.id));
    const missing = [...expected].filter((id) => !found.has(id));
    console.log(`planted: ${expected.size}, found: ${expected.size - missing.length}, other findings: ${[...found].filter((id) => !expected.has(id)).length}`);
    if (missing.length) {
      console.error(`missing: ${missing.join(", ")}`);
      return 1;
    }
  }
  console.log(`report: ${join(outDir, "report.html")}`);
  return 0;
}

process.exitCode = await main();
