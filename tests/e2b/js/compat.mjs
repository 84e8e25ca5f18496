// Warden's E2B front door driven through the official JS SDK (e2b 2.51.0).
//
// The same calls as compat.py, through the SDK's public API, unchanged: the
// SDK finds the server through E2B_API_URL and E2B_SANDBOX_URL and
// authenticates with E2B_API_KEY (a Warden tenant key);
// WARDEN_OTHER_TENANT_KEY is a second tenant's key. Raw fetch is used only
// where the SDK has no public way to make the request (a Connect call with a
// bad access token, an unknown method). Each section runs on its own and a
// failure names its step; the last line is a JSON summary; exit code 1 if
// any section failed. It lives beside package.json so that `from 'e2b'`
// resolves to the pinned package in node_modules, as in any project.

import { createHash, randomBytes, randomUUID } from 'node:crypto'
import http from 'node:http'
import {
  Sandbox,
  CommandExitError,
  AuthenticationError,
  NotFoundError,
  FileNotFoundError,
  SandboxError,
  FileType,
  FilesystemEventType,
  Volume,
} from 'e2b'

const env = (k) => {
  const v = process.env[k]
  if (!v) throw new Error(`${k} is not set`)
  return v
}
const API_URL = env('E2B_API_URL')
const SANDBOX_URL = env('E2B_SANDBOX_URL')
const API_KEY = env('E2B_API_KEY')
const OTHER_KEY = env('WARDEN_OTHER_TENANT_KEY')
const RUN = randomUUID().slice(0, 12)
const HOME = '/home/user'

class Failed extends Error {}
const check = (cond, what) => {
  if (!cond) throw new Failed(what)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const sha256 = (b) => createHash('sha256').update(b).digest('hex')

// Awaits fn() and returns the error it must throw (an instance of cls).
async function expectThrows(cls, what, fn) {
  let got
  try {
    got = await fn()
  } catch (e) {
    if (e instanceof cls) return e
    throw new Failed(`${what}: expected ${cls.name}, got ${e?.constructor?.name}: ${e?.message}`)
  }
  throw new Failed(`${what}: expected ${cls.name}, got a result: ${JSON.stringify(got)}`)
}

async function waitUntil(what, cond, ms = 10000, every = 200) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return
    await sleep(every)
  }
  throw new Failed(`${what}: not within ${ms} ms`)
}

const live = []
async function sandbox(opts) {
  const sbx = await Sandbox.create(opts)
  live.push(sbx.sandboxId)
  return sbx
}

async function createWithMetadataAndEnvs(sbx) {
  check(sbx.sandboxId, 'create: no sandbox id')
  let r = await sbx.commands.run('echo $WARDEN_E2B_ENV')
  check(r.stdout === 'from-create\n', `create envs: visible in a command: ${JSON.stringify(r.stdout)}`)
  r = await sbx.commands.run('echo "$WARDEN_E2B_ENV $PER_CMD"', { envs: { PER_CMD: 'per-command' } })
  check(r.stdout === 'from-create per-command\n', `run envs: ${JSON.stringify(r.stdout)}`)
  const info = await sbx.getInfo()
  check(info.sandboxId === sbx.sandboxId, `getInfo: id ${info.sandboxId}`)
  check(info.metadata.suite === RUN && info.metadata.role === 'main', `getInfo: metadata ${JSON.stringify(info.metadata)}`)
  check(info.startedAt < info.endAt, `getInfo: started ${info.startedAt} end ${info.endAt}`)
  check(info.state === 'running', `getInfo: state ${info.state}`)
  check(await sbx.isRunning(), 'isRunning: false for a live sandbox')
}

async function pathsAndUser(sbx) {
  const r = await sbx.commands.run('pwd; echo "$HOME"; id -u; id -un')
  check(r.stdout === `${HOME}\n${HOME}\n1001\nuser\n`, `default cwd/home/user: ${JSON.stringify(r.stdout)}`)
  check((await sbx.commands.run('pwd', { cwd: '/tmp' })).stdout === '/tmp\n', 'run cwd=/tmp')
  await sbx.commands.run('touch /tmp/w && touch /scratch/w')
  const info = await sbx.files.write('relative.txt', 'rel')
  check(info.path === `${HOME}/relative.txt`, `relative write path: ${info.path}`)
  check((await sbx.files.read('relative.txt')) === 'rel', 'relative read')
  const got = await sbx.files.getInfo('relative.txt')
  check(got.owner === 'user' && got.group === 'user', `owner of a new file: ${JSON.stringify(got)}`)
  // Root's part of the tree stays root's; a project under the home is fine.
  const e = await sbx.commands.run('touch /usr/local/x').catch((err) => err)
  check(e instanceof CommandExitError && e.stderr.includes('Permission denied'), `/usr/local as user: ${e}`)
  await sbx.commands.run('mkdir -p ~/work/app && cd ~/work/app && python -c "print(1)" > f')
  check((await sbx.files.read('work/app/f')) === '1\n', 'python, and a project under the home')
}

async function pty(sbx) {
  // An interactive shell on a terminal: typed input, a resize the shell
  // sees, its exit; and a kill.
  const chunks = []
  const h = await sbx.pty.create({ cols: 100, rows: 30, onData: (d) => chunks.push(Buffer.from(d)), timeoutMs: 30000 })
  const enc = new TextEncoder()
  await sbx.pty.sendInput(h.pid, enc.encode('tty; stty size\n'))
  await new Promise((r) => setTimeout(r, 1000)) // the first `stty size` runs before the resize
  await sbx.pty.resize(h.pid, { cols: 120, rows: 40 })
  await sbx.pty.sendInput(h.pid, enc.encode('stty size; exit 7\n'))
  const e = await h.wait().catch((err) => err)
  const out = Buffer.concat(chunks).toString()
  check(e instanceof CommandExitError && e.exitCode === 7, `pty exit: ${e}`)
  check(out.includes('/dev/pts/'), `pty: no terminal: ${JSON.stringify(out)}`)
  check(out.includes('30 100') && out.includes('40 120'), `pty sizes: ${JSON.stringify(out)}`)
  const k = await sbx.pty.create({ cols: 80, rows: 24, onData: () => {}, timeoutMs: 30000 })
  check((await sbx.pty.kill(k.pid)) === true, 'pty kill')
}

async function foregroundCallbacks(sbx) {
  const events = []
  const t0 = Date.now()
  const r = await sbx.commands.run('for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done', {
    onStdout: (d) => events.push(['out', d, Date.now()]),
    onStderr: (d) => events.push(['err', d, Date.now()]),
  })
  const done = Date.now()
  check(r.exitCode === 0, `exit code ${r.exitCode}`)
  check(r.stdout === 'out1\nout2\nout3\n', `result stdout ${JSON.stringify(r.stdout)}`)
  check(r.stderr === 'err1\nerr2\nerr3\n', `result stderr ${JSON.stringify(r.stderr)}`)
  const out = events.filter((e) => e[0] === 'out').map((e) => e[1]).join('')
  const err = events.filter((e) => e[0] === 'err').map((e) => e[1]).join('')
  check(out === r.stdout && err === r.stderr, `callbacks saw ${JSON.stringify([out, err])}`)
  check(events.length && events[0][2] < done - 400,
    `first output after ${events.length ? events[0][2] - t0 : NaN} ms, done after ${done - t0} ms`)
  const rounds = events.flatMap((e) => e[1].split(/\s+/).filter(Boolean)).map((w) => Number(w.at(-1)))
  check(rounds.every((v, i) => i === 0 || rounds[i - 1] <= v), `output order across streams: ${rounds}`)
}

async function exitCodes(sbx) {
  let e = await expectThrows(CommandExitError, 'exit 3', () => sbx.commands.run('exit 3'))
  check(e.exitCode === 3, `exitCode ${e.exitCode}`)
  e = await expectThrows(CommandExitError, 'stderr + exit 7', () =>
    sbx.commands.run('echo partial; echo oops >&2; exit 7'))
  check(e.exitCode === 7 && e.stderr === 'oops\n' && e.stdout === 'partial\n',
    `CommandExitError fields: ${e.exitCode} ${JSON.stringify([e.stderr, e.stdout])}`)
  e = await expectThrows(CommandExitError, 'missing binary', () => sbx.commands.run('no-such-command-xyz'))
  check(e.exitCode === 127, `missing binary exitCode ${e.exitCode}`)
  const h = await sbx.commands.run('sleep 0.2; exit 4', { background: true })
  e = await expectThrows(CommandExitError, 'background wait', () => h.wait())
  check(e.exitCode === 4, `background exitCode ${e.exitCode}`)
}

async function backgroundConnectKillList(sbx) {
  let h = await sbx.commands.run('echo first; sleep 0.5; echo second', { background: true })
  check(h.pid > 0, `pid ${h.pid}`)
  const r = await h.wait()
  check(r.stdout === 'first\nsecond\n', `background output ${JSON.stringify(r.stdout)}`)

  h = await sbx.commands.run('sleep 1; echo after-connect; sleep 60', { background: true })
  const pid = h.pid
  await h.disconnect()
  const procs = await sbx.commands.list()
  const p = procs.find((x) => x.pid === pid)
  check(p, `commands.list: ${pid} not in ${procs.map((x) => x.pid)}`)
  check(p.cmd === '/bin/bash' && p.args.at(-1).includes('sleep 60'), `commands.list entry: ${JSON.stringify(p)}`)
  const seen = []
  const h2 = await sbx.commands.connect(pid, { onStdout: (d) => seen.push(d) })
  check(h2.pid === pid, `connect pid ${h2.pid}`)
  await waitUntil(`output after connect (${JSON.stringify(seen)})`, () => seen.join('') === 'after-connect\n', 5000, 50)
  check((await sbx.commands.kill(pid)) === true, 'commands.kill: not true')
  const e = await expectThrows(CommandExitError, 'wait on a killed command', () => h2.wait())
  check(e.exitCode !== 0, `killed exitCode ${e.exitCode}`)
  await waitUntil('killed command leaves commands.list',
    async () => !(await sbx.commands.list()).some((x) => x.pid === pid), 5000)
  check((await sbx.commands.kill(pid)) === false, 'commands.kill of a gone pid: not false')
  await expectThrows(NotFoundError, 'commands.connect to a gone pid', () => sbx.commands.connect(pid))
  await expectThrows(NotFoundError, 'sendStdin to a gone pid', () => sbx.commands.sendStdin(pid, 'x'))
  const h3 = await sbx.commands.run('sleep 60', { background: true })
  check((await h3.kill()) === true, 'handle.kill: not true')
  await expectThrows(CommandExitError, 'wait after handle.kill', () => h3.wait())
}

async function stdin(sbx) {
  check(sbx.commands.supportsStdinClose, 'envd version too low for closeStdin')
  let h = await sbx.commands.run('cat; echo done', { background: true, stdin: true })
  await sbx.commands.sendStdin(h.pid, 'hello\n')
  await sbx.commands.sendStdin(h.pid, new TextEncoder().encode('bytes\n'))
  await sbx.commands.closeStdin(h.pid)
  const r = await h.wait()
  check(r.stdout === 'hello\nbytes\ndone\n', `stdin echoed ${JSON.stringify(r.stdout)}`)
  h = await sbx.commands.run('head -n1', { background: true, stdin: true })
  await h.sendStdin('line\n')
  check((await h.wait()).stdout === 'line\n', 'handle.sendStdin')
}

async function filesTextAndBytes(sbx) {
  const f = sbx.files
  const info = await f.write('/scratch/d/a.txt', 'héllo\n')
  check(info.name === 'a.txt' && info.path === '/scratch/d/a.txt' && info.type === FileType.FILE,
    `write info ${JSON.stringify(info)}`)
  check((await f.read('/scratch/d/a.txt')) === 'héllo\n', 'read text')
  const asBytes = await f.read('/scratch/d/a.txt', { format: 'bytes' })
  check(Buffer.from(asBytes).equals(Buffer.from('héllo\n')), 'read bytes')
  const blob = Buffer.alloc(1024, 0).map((_, i) => i % 256)
  await f.write('/tmp/bin.dat', blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.length))
  check(Buffer.from(await f.read('/tmp/bin.dat', { format: 'bytes' })).equals(blob), 'bytes round trip')
  const blobBack = await f.read('/tmp/bin.dat', { format: 'blob' })
  check(Buffer.from(await blobBack.arrayBuffer()).equals(blob), 'read format blob')
}

async function filesLarge(sbx) {
  const big = randomBytes(20 * 1024 * 1024)
  const digest = sha256(big)
  let t = Date.now()
  await sbx.files.write('/scratch/big.bin', new Blob([big]))
  const up = Date.now() - t
  const r = await sbx.commands.run('sha256sum /scratch/big.bin')
  check(r.stdout.split(' ')[0] === digest, '20 MiB upload hash')
  t = Date.now()
  const back = Buffer.from(await sbx.files.read('/scratch/big.bin', { format: 'bytes' }))
  const down = Date.now() - t
  check(back.length === big.length && sha256(back) === digest, `20 MiB download: ${back.length} bytes`)
  console.log(`  20 MiB: write ${up} ms, read ${down} ms`)
  await sbx.files.remove('/scratch/big.bin')
}

async function filesOps(sbx) {
  const f = sbx.files
  check((await f.makeDir('/scratch/ops')) === true, 'makeDir: not true')
  check((await f.makeDir('/scratch/ops')) === false, 'makeDir of an existing dir: not false')
  check((await f.makeDir('/scratch/ops/x/y')) === true, 'makeDir with parents')
  await f.write('/scratch/ops/one.txt', '1')
  await f.write('/scratch/ops/x/two.txt', '22')
  // A multi-file upload refused at its first file, the client still
  // sending the rest: the refusal reaches it (not a reset).
  const refused = await expectThrows(SandboxError, 'an upload to a directory user may not make', () =>
    f.write([{ path: '/no-such-top/a.txt', data: 'x'.repeat(1 << 20) }, { path: '/scratch/ops/b.txt', data: 'y'.repeat(4 << 20) }]))
  check(/denied/i.test(refused.message), `the refusal says why: ${refused.message}`)
  const entries = Object.fromEntries((await f.list('/scratch/ops')).map((e) => [e.name, e]))
  check(Object.keys(entries).sort().join() === 'one.txt,x', `list: ${Object.keys(entries)}`)
  check(entries['one.txt'].type === FileType.FILE && entries['one.txt'].size === 1, `list entry: ${JSON.stringify(entries['one.txt'])}`)
  check(entries.x.type === FileType.DIR, `list dir entry: ${JSON.stringify(entries.x)}`)
  const deep = (await f.list('/scratch/ops', { depth: 3 })).map((e) => e.path)
  check(deep.includes('/scratch/ops/x/two.txt') && deep.includes('/scratch/ops/x/y'), `list depth 3: ${deep}`)
  check((await f.exists('/scratch/ops/one.txt')) === true, 'exists: file')
  check((await f.exists('/scratch/ops/none')) === false, 'exists: missing')
  const info = await f.getInfo('/scratch/ops/x/two.txt')
  check(info.name === 'two.txt' && info.path === '/scratch/ops/x/two.txt' && info.type === FileType.FILE && info.size === 2,
    `getInfo: ${JSON.stringify(info)}`)
  check(info.permissions.endsWith('rw-r--r--') && (info.mode & 0o777) === 0o644, `getInfo mode: ${JSON.stringify(info)}`)
  check(Math.abs(info.modifiedTime.getTime() - Date.now()) < 120000, `mtime ${info.modifiedTime}`)
  const moved = await f.rename('/scratch/ops/one.txt', '/scratch/ops/uno.txt')
  check(moved.name === 'uno.txt' && moved.path === '/scratch/ops/uno.txt', `rename: ${JSON.stringify(moved)}`)
  check(!(await f.exists('/scratch/ops/one.txt')) && (await f.read('/scratch/ops/uno.txt')) === '1', 'rename: old gone, new readable')
  await f.remove('/scratch/ops/uno.txt')
  check(!(await f.exists('/scratch/ops/uno.txt')), 'remove file')
  await f.remove('/scratch/ops')
  check(!(await f.exists('/scratch/ops')), 'remove directory tree')
  await f.remove('/scratch/ops') // as E2B: removing what is not there is a no-op
  await expectThrows(FileNotFoundError, 'read missing', () => f.read('/scratch/none.txt'))
  await expectThrows(NotFoundError, 'getInfo missing', () => f.getInfo('/scratch/none.txt'))
}

async function watch(sbx) {
  const f = sbx.files
  await f.makeDir('/scratch/watched')
  const seen = []
  const h = await f.watchDir('/scratch/watched', (e) => seen.push(e))
  await f.write('/scratch/watched/f.txt', '1')
  await sbx.commands.run('echo more >> /scratch/watched/f.txt')
  await f.remove('/scratch/watched/f.txt')
  const kinds = () => seen.filter((e) => e.name === 'f.txt').map((e) => e.type)
  await waitUntil(`watch events (${JSON.stringify(seen)})`, () =>
    [FilesystemEventType.CREATE, FilesystemEventType.WRITE, FilesystemEventType.REMOVE].every((k) => kinds().includes(k)), 5000, 100)
  check(kinds().indexOf(FilesystemEventType.CREATE) < kinds().indexOf(FilesystemEventType.REMOVE), `event order ${kinds()}`)
  await h.stop()
  await expectThrows(NotFoundError, 'watchDir of a missing directory', () => f.watchDir('/scratch/no-such-dir', () => {}))
}

async function metadata(sbx) {
  const f = sbx.files
  const meta = { author: 'mish', purpose: 'upload' }
  const info = await f.write('/scratch/meta.txt', 'm', { metadata: meta })
  check(JSON.stringify(info.metadata) === JSON.stringify(meta), `write answers the metadata: ${JSON.stringify(info)}`)
  const got = await f.getInfo('/scratch/meta.txt')
  check(got.metadata?.author === 'mish' && got.metadata?.purpose === 'upload', `getInfo: ${JSON.stringify(got)}`)
  const again = await f.write('/scratch/meta.txt', 'again')
  check(!again.metadata, `an overwrite clears it: ${JSON.stringify(again)}`)
  await f.makeDir('/scratch/w-entry')
  const seen = []
  const h = await f.watchDir('/scratch/w-entry', (e) => seen.push(e), { includeEntry: true })
  await f.write('/scratch/w-entry/e.txt', '1', { metadata: { tag: 'w' } })
  await waitUntil(`three events for a new file (${JSON.stringify(seen)})`, () => seen.length >= 3, 5000, 100)
  check(JSON.stringify(seen.map((e) => e.type)) === JSON.stringify([FilesystemEventType.CREATE, FilesystemEventType.CHMOD, FilesystemEventType.WRITE]), `events: ${JSON.stringify(seen)}`)
  const entry = seen[2].entry
  check(entry?.path === '/scratch/w-entry/e.txt' && entry?.metadata?.tag === 'w', `the entry: ${JSON.stringify(entry)}`)
  await h.stop()
}

async function connectById(sbx) {
  await sbx.files.write('/scratch/shared.txt', 'shared')
  const again = await Sandbox.connect(sbx.sandboxId)
  check(again.sandboxId === sbx.sandboxId, 'connect: id')
  check((await again.files.read('/scratch/shared.txt')) === 'shared', 'connect: same filesystem')
  check((await again.commands.run('echo $WARDEN_E2B_ENV')).stdout === 'from-create\n', 'connect: envs')
}

async function listFiltersAndPages() {
  const ids = new Set()
  for (let i = 0; i < 3; i++) ids.add((await sandbox({ metadata: { suite: RUN, group: 'list' }, timeoutMs: 120000 })).sandboxId)
  const p = Sandbox.list({ query: { metadata: { suite: RUN, group: 'list' } }, limit: 2 })
  const first = await p.nextItems()
  check(first.length === 2 && p.hasNext, `page 1: ${first.length} items, hasNext ${p.hasNext}`)
  const second = await p.nextItems()
  check(second.length === 1 && !p.hasNext, `page 2: ${second.length} items, hasNext ${p.hasNext}`)
  const got = new Set([...first, ...second].map((i) => i.sandboxId))
  check(got.size === 3 && [...ids].every((id) => got.has(id)), `listed ${[...got]} != created ${[...ids]}`)
  const none = await Sandbox.list({ query: { metadata: { suite: RUN, group: 'nope' } } }).nextItems()
  check(none.length === 0, `non-matching filter: ${none.length} items`)
  for (const id of ids) check((await Sandbox.kill(id)) === true, `kill ${id}`)
}

async function timeoutAndExpiry(sbx) {
  await sbx.setTimeout(60000)
  const left = ((await sbx.getInfo()).endAt.getTime() - Date.now()) / 1000
  check(left > 50 && left <= 65, `setTimeout(60 s): endAt in ${left} s`)
  const short = await sandbox({ metadata: { suite: RUN }, timeoutMs: 60000 })
  await short.setTimeout(2000)
  const t0 = Date.now()
  await waitUntil('expired sandbox: isRunning false', async () => !(await short.isRunning()), 10000, 250)
  console.log(`  expired ${(Date.now() - t0) / 1000} s after setTimeout(2000)`)
  await expectThrows(NotFoundError, 'getInfo of an expired sandbox', () => Sandbox.getInfo(short.sandboxId))
}

async function kill() {
  const sbx = await sandbox({ metadata: { suite: RUN }, timeoutMs: 60000 })
  check((await sbx.kill()) === true, 'kill: not true')
  check((await sbx.isRunning()) === false, 'isRunning after kill')
  check((await Sandbox.kill(sbx.sandboxId)) === false, 'second kill: not false')
  await expectThrows(NotFoundError, 'getInfo after kill', () => Sandbox.getInfo(sbx.sandboxId))
  await expectThrows(NotFoundError, 'connect after kill', () => Sandbox.connect(sbx.sandboxId))
}

async function metricsAndPause(sbx) {
  const m = await sbx.getMetrics()
  const last = m.at(-1)
  check(last && last.cpuCount >= 1 && last.memTotal >= last.memUsed && last.memUsed > 0, `getMetrics: ${JSON.stringify(m)}`)
  // `keepMemory: true` is E2B's default (`memory: true`): a native sandbox
  // cannot keep its memory, so it keeps its files, as a plain pause().
  const full = await sandbox({ timeoutMs: 120000 })
  await full.files.write('full.txt', 'kept')
  check((await full.pause({ keepMemory: true })) === true, 'pause({keepMemory: true}) of a native sandbox')
  check((await Sandbox.getInfo(full.sandboxId)).state === 'paused', 'paused')
  const back = await Sandbox.connect(full.sandboxId, { timeoutMs: 60000 })
  check((await back.files.read('full.txt')) === 'kept', 'its files after the pause')
  await back.kill()
  // A pause keeps the files; connect resumes the sandbox under its id.
  const p = await sandbox({ timeoutMs: 120000 })
  await p.files.write('kept.txt', 'before the pause')
  await p.commands.run('sleep 600', { background: true })
  check((await p.pause()) === true, 'pause')
  check((await Sandbox.getInfo(p.sandboxId)).state === 'paused', 'getInfo of a paused sandbox')
  check((await p.pause()) === false, 'a second pause: false (already paused)')
  const r = await Sandbox.connect(p.sandboxId, { timeoutMs: 60000 })
  check(r.sandboxId === p.sandboxId, 'resumed under its id')
  check((await r.files.read('kept.txt')) === 'before the pause', 'the file written before the pause')
  const out = await r.commands.run('pgrep -x sleep || echo none')
  check(out.stdout === 'none\n', `its processes ended with the pause: ${JSON.stringify(out.stdout)}`)
  await r.kill()
  // autoResume: the next envd call wakes a paused sandbox by itself.
  const w = await sandbox({ timeoutMs: 60000, lifecycle: { onTimeout: 'pause', autoResume: true } })
  check((await Sandbox.getInfo(w.sandboxId)).lifecycle?.autoResume === true, 'lifecycle shows autoResume')
  await w.files.write('w.txt', 'woken by traffic')
  check((await w.pause()) === true, 'pause of an auto-resuming sandbox')
  check((await Sandbox.getInfo(w.sandboxId)).state === 'paused', 'paused until a request comes')
  check((await w.files.read('w.txt')) === 'woken by traffic', 'an envd call resumes it and is answered')
  check((await Sandbox.getInfo(w.sandboxId)).state === 'running', 'running again')
  await w.kill()
  // fork: copies that start with the source's files (not its processes).
  const f = await sandbox({ timeoutMs: 60000 })
  await f.files.write('f.txt', 'to fork')
  const forks = await f.fork({ count: 2, timeoutMs: 60000 })
  check(forks.length === 2 && forks.every((x) => x instanceof Sandbox), `two forks: ${forks}`)
  for (const x of forks) {
    live.push(x.sandboxId)
    check(x.sandboxId !== f.sandboxId, 'a fork has an id of its own')
    check((await x.files.read('f.txt')) === 'to fork', "a fork has the source's file")
    await x.kill()
  }
  check(await f.isRunning(), 'the source runs on')
  await f.kill()
}

async function wrongApiKey() {
  const bad = 'e2b_' + '0'.repeat(40)
  await expectThrows(AuthenticationError, 'create with a wrong key', () => Sandbox.create({ apiKey: bad }))
  await expectThrows(AuthenticationError, 'list with a wrong key', () => Sandbox.list({ apiKey: bad }).nextItems())
}

async function otherTenant(sbx) {
  const id = sbx.sandboxId
  await expectThrows(NotFoundError, "connect with the other tenant's key", () => Sandbox.connect(id, { apiKey: OTHER_KEY }))
  await expectThrows(NotFoundError, "getInfo with the other tenant's key", () => Sandbox.getInfo(id, { apiKey: OTHER_KEY }))
  check((await Sandbox.kill(id, { apiKey: OTHER_KEY })) === false, 'kill by the other tenant: not false')
  const theirs = await Sandbox.list({ apiKey: OTHER_KEY, query: { metadata: { suite: RUN } } }).nextItems()
  check(theirs.length === 0, "the other tenant lists this tenant's sandboxes")
  check(await sbx.isRunning(), "sandbox survived the other tenant's kill")
}

// The envd access token, from the REST connect call the SDK makes.
async function envdToken(id) {
  const r = await fetch(`${API_URL}/v2/sandboxes/${id}/connect`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ timeout: 120 }),
  })
  const text = await r.text()
  check(r.status === 200 || r.status === 201, `REST connect: ${r.status} ${text}`)
  return JSON.parse(text).envdAccessToken
}

async function connectRpc(id, token, method) {
  const headers = { 'Content-Type': 'application/json', 'Connect-Protocol-Version': '1', 'E2b-Sandbox-Id': id, 'E2b-Sandbox-Port': '49983' }
  if (token !== null) headers['X-Access-Token'] = token
  const r = await fetch(`${SANDBOX_URL}/${method}`, { method: 'POST', headers, body: '{}' })
  const text = await r.text()
  let body = {}
  try { body = JSON.parse(text) } catch {}
  return { status: r.status, body, text }
}

async function wrongAccessToken(sbx) {
  const id = sbx.sandboxId
  // The SDK's own client with a tampered token (the public constructor).
  const bad = new Sandbox({ sandboxId: id, envdVersion: '0.5.7', envdAccessToken: 'tampered' })
  await expectThrows(AuthenticationError, 'commands.run with a bad token', () => bad.commands.run('true'))
  await expectThrows(AuthenticationError, 'files.read with a bad token', () => bad.files.read('/scratch/relative.txt'))
  const good = await envdToken(id)
  check((await connectRpc(id, good, 'process.Process/List')).status === 200, 'List, good token')
  const other = await sandbox({ metadata: { suite: RUN }, timeoutMs: 60000 })
  for (const [token, what] of [['tampered', 'bad'], [null, 'no'], [await envdToken(other.sandboxId), "another sandbox's"]]) {
    const r = await connectRpc(id, token, 'process.Process/List')
    check(r.status === 401 && r.body.code === 'unauthenticated', `${what} token: ${r.status} ${r.text}`)
  }
  await other.kill()
}

async function unknownMethod(sbx) {
  const token = await envdToken(sbx.sandboxId)
  for (const method of ['process.Process/NoSuchMethod', 'filesystem.Filesystem/NoSuchMethod']) {
    const r = await connectRpc(sbx.sandboxId, token, method)
    // Connect maps `unimplemented` to HTTP 501 (a plain 404 reads the same to its clients).
    check([404, 501].includes(r.status) && r.body.code === 'unimplemented', `${method}: ${r.status} ${r.text}`)
  }
}

// A web server in the sandbox, serving `text` as /index.html.
async function serveDir(sbx, port, text) {
  await sbx.files.write(`/scratch/site${port}/index.html`, text)
  await sbx.commands.run(`python3 -m http.server ${port} --bind 127.0.0.1 --directory /scratch/site${port}`, { background: true })
}

// GET / by the host name getHost built, sent to the server as wildcard DNS
// for its domain would send it (fetch may not set Host; node:http may).
function viaHost(host, token) {
  const u = new URL(SANDBOX_URL)
  const headers = { Host: host }
  if (token) headers['e2b-traffic-access-token'] = token
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname: u.hostname, port: u.port, path: '/index.html', headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode, text }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function ports(sbx) {
  await serveDir(sbx, 8123, 'hello from the sandbox')
  const host = sbx.getHost(8123)
  check(host.startsWith(`8123-${sbx.sandboxId}.`), `getHost: ${host}`)
  check(!host.split('.').slice(1).join('.').includes('e2b'), `getHost names E2B's domain: ${host}`)
  await waitUntil('the sandbox server through getHost', async () => (await viaHost(host)).text === 'hello from the sandbox', 20000)
  // Public by default; private asks for the traffic token.
  const priv = await sandbox({ metadata: { suite: RUN }, timeoutMs: 120000, network: { allowPublicTraffic: false } })
  const token = priv.trafficAccessToken
  check(!!token, 'a private sandbox trafficAccessToken')
  await serveDir(priv, 8124, 'private')
  const phost = priv.getHost(8124)
  await waitUntil('the private server with its token', async () => (await viaHost(phost, token)).text === 'private', 20000)
  check((await viaHost(phost)).status === 403, 'a private port without the token')
  check((await viaHost(phost, 'et_forged')).status === 403, 'a private port, forged token')
  const closed = await viaHost(sbx.getHost(8125))
  check(closed.status === 502 && closed.text.includes('port is not open'), `a closed port: ${closed.status} ${closed.text}`)
}

// A command whose sandbox is killed under it fails saying so.
async function killedMidCommand() {
  const victim = await sandbox({ metadata: { suite: RUN }, timeoutMs: 120000 })
  setTimeout(() => Sandbox.kill(victim.sandboxId).catch(() => {}), 1000)
  let err = null
  try {
    await victim.commands.run('sleep 30')
  } catch (e) {
    err = e
  }
  check(err && /killed/.test(err.message), `told it was killed: ${err?.constructor?.name}: ${err?.message}`)
}

// E2B's Volume API and volumeMounts, on Warden's volumes.
async function volumes() {
  const name = `compat-js-${RUN}`
  const vol = await Volume.create(name)
  check(vol.name === name && vol.volumeId.startsWith('vol_'), `Volume.create: ${vol.volumeId}`)
  try {
    const w = await sandbox({ timeoutMs: 60000, volumeMounts: { '/home/user/data': vol } })
    await w.commands.run('echo kept-js > ~/data/notes.txt')
    await expectThrows(Error, 'destroy of a volume in use', () => Volume.destroy(vol.volumeId))
    await w.kill()
    const r = await sandbox({ timeoutMs: 60000, volumeMounts: { '/mnt/v': name } })
    const out = await r.commands.run('cat /mnt/v/notes.txt')
    check(out.stdout === 'kept-js\n', `the next sandbox reads the file: ${JSON.stringify(out.stdout)}`)
    await r.kill()
    const names = (await Volume.list()).map((v) => v.name)
    check(names.includes(name), `Volume.list: ${names}`)
    check((await Volume.getInfo(vol.volumeId)).name === name, 'Volume.getInfo')
    const theirs = (await Volume.list({ apiKey: OTHER_KEY })).map((v) => v.name)
    check(!theirs.includes(name), "the other tenant lists this tenant's volume")
    check((await Volume.destroy(vol.volumeId, { apiKey: OTHER_KEY })) === false, 'the other tenant destroyed it')
  } finally {
    await Volume.destroy(vol.volumeId)
  }
  check((await Volume.destroy(vol.volumeId)) === false, 'a second destroy: not false')
}

// createSnapshot, Sandbox.create(<snapshot>), listSnapshots,
// deleteSnapshot, on Warden's filesystem snapshots.
async function snapshots() {
  const src = await sandbox({ timeoutMs: 120000 })
  await src.files.write('proj/main.js', "console.log('from the snapshot')\n")
  await src.commands.run('echo t > /tmp/t.txt && chmod 700 proj')
  const name = `compat-js-${RUN}`
  const info = await src.createSnapshot({ name })
  check(info.snapshotId.startsWith('snp_'), `createSnapshot: ${info.snapshotId}`)
  check(info.names.length === 1 && info.names[0] === name, `createSnapshot names: ${info.names}`)
  check(await src.isRunning(), 'the source keeps running')
  try {
    const listed = (await Sandbox.listSnapshots({ sandboxId: src.sandboxId }).nextItems()).map((x) => x.snapshotId)
    check(listed.includes(info.snapshotId), `listSnapshots({sandboxId}): ${listed}`)
    for (const template of [info.snapshotId, name]) {
      const sbx = await Sandbox.create(template, { timeoutMs: 60000 })
      live.push(sbx.sandboxId)
      const out = await sbx.commands.run('node proj/main.js 2>/dev/null || cat proj/main.js; cat /tmp/t.txt; stat -c %a proj')
      check(out.stdout.includes('from the snapshot') && out.stdout.endsWith('t\n700\n'),
        `a sandbox from ${template}: ${JSON.stringify(out.stdout)}`)
      await sbx.kill()
    }
    await expectThrows(Error, 'the other tenant starts from the snapshot',
      () => Sandbox.create(info.snapshotId, { timeoutMs: 30000, apiKey: OTHER_KEY }))
    const theirs = (await Sandbox.listSnapshots({ apiKey: OTHER_KEY }).nextItems()).map((x) => x.snapshotId)
    check(!theirs.includes(info.snapshotId), 'the other tenant lists the snapshot')
    check((await Sandbox.deleteSnapshot(info.snapshotId, { apiKey: OTHER_KEY })) === false, 'the other tenant deleted it')
  } finally {
    check((await Sandbox.deleteSnapshot(info.snapshotId)) === true, 'deleteSnapshot')
    await src.kill()
  }
  check((await Sandbox.deleteSnapshot(info.snapshotId)) === false, 'a second deleteSnapshot: not false')
}

async function main() {
  const t0 = Date.now()
  const passed = []
  const failed = {}
  let main
  try {
    main = await sandbox({ metadata: { suite: RUN, role: 'main' }, envs: { WARDEN_E2B_ENV: 'from-create' }, timeoutMs: 300000 })
  } catch (e) {
    console.error(e)
    failed.create = `${e?.constructor?.name}: ${e?.message}`
  }
  const sections = [
    ['create with metadata and envs, getInfo', createWithMetadataAndEnvs],
    ['paths: home /home/user, cwd, user, relative paths, python', pathsAndUser],
    ['pty: typed input, resize, exit code, kill', pty],
    ['foreground run with onStdout/onStderr', foregroundCallbacks],
    ['exit codes and CommandExitError', exitCodes],
    ['background, commands.connect/kill/list', backgroundConnectKillList],
    ['stdin: sendStdin, closeStdin', stdin],
    ['files: text and bytes', filesTextAndBytes],
    ['files: 20 MiB round trip', filesLarge],
    ['files: list/makeDir/exists/getInfo/rename/remove', filesOps],
    ['files: watchDir (streaming)', watch],
    ['files: metadata, watch entries', metadata],
    ['Sandbox.connect(id)', connectById],
    ['Sandbox.list: metadata filter, pagination', listFiltersAndPages],
    ['setTimeout and expiry', timeoutAndExpiry],
    ['ports: getHost, public and private traffic', ports],
    ['a command cut by a kill says so', killedMidCommand],
    ['volumes: Volume.create/list/getInfo/destroy, volumeMounts', volumes],
    ['snapshots: createSnapshot, Sandbox.create(snapshot), list, delete', snapshots],
    ['kill', kill],
    ['getMetrics; pause (full: files where memory cannot be kept), connect resumes', metricsAndPause],
    ['negative: wrong API key', wrongApiKey],
    ["negative: another tenant's sandbox", otherTenant],
    ['negative: wrong envd access token', wrongAccessToken],
    ['negative: unknown Connect method', unknownMethod],
  ]
  for (const [name, fn] of main ? sections : []) {
    const t = Date.now()
    try {
      await fn(main)
      passed.push(name)
      console.log(`[ok] ${name} (${(Date.now() - t) / 1000} s)`)
    } catch (e) {
      failed[name] = `${e?.constructor?.name}: ${e?.message}`
      console.log(`[FAILED] ${name} (${(Date.now() - t) / 1000} s)`)
      console.error(e)
    }
  }
  for (const id of live) await Sandbox.kill(id).catch(() => {})
  console.log(JSON.stringify({ sdk: 'js', e2b: '2.51.0', passed: passed.length, failed, seconds: (Date.now() - t0) / 1000 }))
  return Object.keys(failed).length ? 1 : 0
}

process.exitCode = await main()
