// Warden's code interpreter driven through E2B's own JS SDK
// (@e2b/code-interpreter 2.8.0), unchanged: `Sandbox.create()` asks for the
// `code-interpreter-v1` template, and `runCode` and the contexts reach the
// interpreter on the sandbox's port 49999 through E2B_SANDBOX_URL. The same
// sections as tests/e2b/code_interpreter.py; the last line is a JSON
// summary; exit code 1 if any section failed.

import { randomUUID } from 'node:crypto'
import { Sandbox } from '@e2b/code-interpreter'

const RUN = randomUUID().slice(0, 12)

class Failed extends Error {}
const check = (cond, what) => {
  if (!cond) throw new Failed(what)
}

async function valuesAndState(sbx) {
  const first = await sbx.runCode('x = 1 + 1\nx')
  check(first.text === '2', `1+1: ${first.text} ${JSON.stringify(first.error)}`)
  check((await sbx.runCode('x * 21')).text === '42', 'state kept between calls')
}

async function outputCallbacks(sbx) {
  const out = []
  const err = []
  await sbx.runCode("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)", {
    onStdout: (m) => out.push(m.line),
    onStderr: (m) => err.push(m.line),
  })
  check(out.join('') === 'to stdout\n', `onStdout: ${JSON.stringify(out)}`)
  check(err.join('') === 'to stderr\n', `onStderr: ${JSON.stringify(err)}`)
}

async function errors(sbx) {
  const ex = await sbx.runCode('1 / 0')
  check(ex.error?.name === 'ZeroDivisionError', `error: ${JSON.stringify(ex.error)}`)
}

async function richResults(sbx) {
  const df = await sbx.runCode("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
  check(df.results[0]?.html?.includes('<table'), 'a DataFrame as HTML')
  const fig = await sbx.runCode('import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()')
  const png = fig.results.find((r) => r.png)?.png
  check(png && Buffer.from(png, 'base64').subarray(0, 4).toString('latin1') === '\x89PNG', 'a figure as PNG')
}

async function envVars(sbx) {
  const got = await sbx.runCode("import os\nos.environ.get('WARDEN_CI_VAR')", { envs: { WARDEN_CI_VAR: 'v1' } })
  // A string result is shown without its quotes, as E2B's interpreter does.
  check(got.text === 'v1', `envs in the call: ${got.text}`)
}

async function contexts(sbx) {
  const ctx = await sbx.createCodeContext()
  await sbx.runCode('y = 5', { context: ctx })
  check((await sbx.runCode('y', { context: ctx })).text === '5', 'state in a context')
  check((await sbx.runCode('y')).error?.name === 'NameError', 'the default context is separate')
  check((await sbx.listCodeContexts()).some((c) => c.id === ctx.id), 'listCodeContexts')
  await sbx.restartCodeContext(ctx)
  check((await sbx.runCode('y', { context: ctx })).error?.name === 'NameError', 'restart clears state')
  await sbx.removeCodeContext(ctx)
  check(!(await sbx.listCodeContexts()).some((c) => c.id === ctx.id), 'removeCodeContext')
}

async function timeouts(sbx) {
  let threw = null
  try {
    await sbx.runCode('import time\ntime.sleep(30)', { timeoutMs: 2000 })
  } catch (e) {
    threw = e
  }
  check(threw, 'runCode past its timeout must throw')
  const t0 = Date.now()
  const after = await sbx.runCode('x')
  check(after.text === '2', `the context after a timeout: ${JSON.stringify(after)}`)
  check(Date.now() - t0 < 10000, 'the next call did not wait for the old one')
}

async function otherLanguages(sbx) {
  const js = await sbx.runCode("console.log('from js'); let n = 20; n + 1", { language: 'js' })
  check(js.logs.stdout.join('') === 'from js\n' && js.text === '21', `JavaScript: ${JSON.stringify(js)}`)
  const ts = await sbx.runCode("const m: string = 'typed'; m", { language: 'ts' })
  check(ts.text === 'typed', `TypeScript: ${JSON.stringify(ts)}`)
  const ctx = await sbx.createCodeContext({ language: 'r' })
  const r = await sbx.runCode('x <- 6 * 7; x', { context: ctx })
  check(r.results[0]?.text === '[1] 42', `R in its own context: ${JSON.stringify(r)}`)
  const bash = await sbx.runCode('echo $WARDEN_CI_VAR', { language: 'bash', envs: { WARDEN_CI_VAR: 'b' } })
  check(bash.logs.stdout.join('') === 'b\n', `Bash with envs: ${JSON.stringify(bash)}`)
}

async function main() {
  const t0 = Date.now()
  const passed = []
  const failed = {}
  let sbx
  try {
    sbx = await Sandbox.create({ metadata: { suite: RUN } })
  } catch (e) {
    console.error(e)
    failed.create = `${e?.constructor?.name}: ${e?.message}`
  }
  const sections = [
    ['runCode: values and state', valuesAndState],
    ['JavaScript, TypeScript, R, Bash', otherLanguages],
    ['onStdout / onStderr', outputCallbacks],
    ['errors', errors],
    ['DataFrame as HTML, figure as PNG', richResults],
    ['envs per call', envVars],
    ['contexts: create, list, restart, remove', contexts],
    ['timeout interrupts the execution', timeouts],
  ]
  for (const [name, fn] of sbx ? sections : []) {
    try {
      await fn(sbx)
      passed.push(name)
      console.log(`[ok] ${name}`)
    } catch (e) {
      failed[name] = `${e?.constructor?.name}: ${e?.message}`
      console.log(`[FAILED] ${name}`)
      console.error(e)
    }
  }
  if (sbx) await sbx.kill().catch(() => {})
  console.log(JSON.stringify({ sdk: 'js', '@e2b/code-interpreter': '2.8.0', passed: passed.length, failed, seconds: (Date.now() - t0) / 1000 }))
  return Object.keys(failed).length ? 1 : 0
}

process.exitCode = await main()
