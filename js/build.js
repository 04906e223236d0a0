// Builds js/dist/t.js from js/src: esbuild bundles the modules into one IIFE, terser
// minifies it. `node build.js` writes the file and prints its sizes; `node build.js --check`
// only compares the fresh build with the committed file.
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import * as esbuild from 'esbuild'
import { minify } from 'terser'

var here = dirname(fileURLToPath(import.meta.url))
export var OUT = join(here, 'dist', 't.js')
export var BUDGET = 1536 // gzipped bytes

export async function build() {
  var bundled = await esbuild.build({
    entryPoints: [join(here, 'src', 'index.js')],
    bundle: true,
    format: 'iife',
    target: 'es2020',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  })
  var out = await minify(bundled.outputFiles[0].text, {
    ecma: 2020,
    compress: { passes: 3, unsafe_arrows: true, pure_getters: true },
    mangle: true,
    format: { comments: false },
  })
  return out.code + '\n'
}

export var sizes = (code) => ({
  minified: Buffer.byteLength(code),
  gzipped: gzipSync(code, { level: 9 }).length,
})

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  var code = await build()
  var s = sizes(code)
  if (process.argv.includes('--check')) {
    if (readFileSync(OUT, 'utf8') !== code) {
      console.error('js/dist/t.js differs from a fresh build of js/src: run `npm run build`')
      process.exit(1)
    }
  } else writeFileSync(OUT, code)
  console.log(`t.js: ${s.minified} bytes minified, ${s.gzipped} bytes gzipped (budget ${BUDGET})`)
  if (s.gzipped > BUDGET) {
    console.error(`t.js is over the ${BUDGET}-byte gzip budget`)
    process.exit(1)
  }
}
