// The committed js/dist/t.js is exactly what js/src builds to, and within the size budget.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { BUDGET, OUT, build, sizes } from '../build.js'

test('the committed build equals a fresh build of js/src (run `npm run build`)', async () => {
  assert.equal(readFileSync(OUT, 'utf8'), await build())
})

test(`t.js is at most ${BUDGET} bytes gzipped`, async () => {
  var { minified, gzipped } = sizes(readFileSync(OUT, 'utf8'))
  assert.ok(gzipped <= BUDGET, `${gzipped} bytes gzipped (${minified} minified)`)
})

test('the README states the current sizes', () => {
  var { minified, gzipped } = sizes(readFileSync(OUT, 'utf8'))
  var readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  assert.ok(
    readme.includes(`**${minified} bytes minified, ${gzipped} bytes gzipped**`),
    `update the Tracking snippet section of README.md: ${minified} bytes minified, ${gzipped} bytes gzipped`
  )
})

test('t.js uses no eval, Function constructor or string timers (strict CSP)', () => {
  var code = readFileSync(OUT, 'utf8')
  assert.doesNotMatch(code, /\beval\(|new Function|Function\(|setTimeout\("|setInterval\("/)
})
