// A memory-keeping pause through the pinned JS SDK (e2b 2.51.0), against a
// server whose E2B sandboxes run on gVisor (`[e2b] isolation = "gvisor"`):
// a background command started before `pause()` (no keepMemory: E2B's
// default, full) is the same process after `Sandbox.connect()`, counting on
// from where it was; `pause({ keepMemory: false })` ends the processes and
// keeps the files. The last line is a JSON summary.

import { randomUUID } from 'node:crypto'
import { Sandbox } from 'e2b'

const RUN = randomUUID().slice(0, 12)
const COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.t; mv /tmp/n.t /tmp/n; sleep 0.05; done'

class Failed extends Error {}
const check = (cond, what) => {
  if (!cond) throw new Failed(what)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const count = async (sbx) => Number((await sbx.files.read('/tmp/n')).trim())
const pids = async (sbx) => (await sbx.commands.list()).map((p) => p.pid)

async function main() {
  const t0 = Date.now()
  const passed = []
  const failed = {}
  const sbx = await Sandbox.create({ timeoutMs: 120_000, metadata: { suite: RUN } })
  try {
    const h = await sbx.commands.run(COUNTER, { background: true })
    await sbx.files.write('kept.txt', 'before the pause')
    for (let i = 0; i < 200 && !(await sbx.files.exists('/tmp/n')); i++) await sleep(50)
    const before = await count(sbx)
    try {
      check((await sbx.pause()) === true, 'pause (default mode)')
      check((await Sandbox.getInfo(sbx.sandboxId)).state === 'paused', 'paused')
      const r = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 120_000 })
      check((await pids(r)).includes(h.pid), `the background command survived: ${h.pid}`)
      const n1 = await count(r)
      await sleep(400)
      const n2 = await count(r)
      check(n1 >= before && n2 > n1, `counting on from ${before}: ${n1}, then ${n2}`)
      check((await r.files.read('kept.txt')) === 'before the pause', 'the file written before the pause')
      passed.push('full pause keeps a process')
      console.log('[ok] full pause keeps a process')

      check((await r.pause({ keepMemory: false })) === true, 'pause({ keepMemory: false })')
      const back = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 120_000 })
      check(!(await pids(back)).includes(h.pid), 'a filesystem pause ends processes')
      check((await back.files.read('kept.txt')) === 'before the pause', 'its files are kept')
      passed.push('filesystem pause ends it')
      console.log('[ok] filesystem pause ends it')
    } catch (e) {
      failed[`after ${passed.length} passed`] = `${e?.constructor?.name}: ${e?.message}`
      console.error(e)
    }
  } finally {
    await Sandbox.kill(sbx.sandboxId).catch(() => {})
  }
  console.log(JSON.stringify({ sdk: 'js', passed: passed.length, failed, seconds: (Date.now() - t0) / 1000 }))
  return Object.keys(failed).length ? 1 : 0
}

process.exitCode = await main()
