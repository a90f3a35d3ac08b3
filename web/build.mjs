#!/usr/bin/env node
// Builds the dashboard into ONE self-contained file: dist/index.html (JS and CSS inlined,
// uPlot's CSS included) and dist/index.html.gz (gzip level 9, reproducible: no name, mtime 0),
// which the C side embeds. `node build.mjs --watch` rebuilds when src/ changes.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.join(HERE, 'src');
const DIST = path.join(HERE, 'dist');
const BUDGET_GZ = 60 * 1024;
const TARGET = ['es2020', 'chrome88', 'firefox85', 'safari15'];

async function bundle() {
  const common = { bundle: true, minify: true, write: false, logLevel: 'silent', legalComments: 'none', target: TARGET };
  const [js, css] = await Promise.all([
    esbuild.build({ ...common, entryPoints: [path.join(SRC, 'app.js')], format: 'esm', outfile: 'app.js' }),
    esbuild.build({ ...common, entryPoints: [path.join(SRC, 'style.css')], outfile: 'style.css' }),
  ]);
  const text = (r) => r.outputFiles.map((f) => f.text).join('');
  return { js: text(js), css: text(css) };
}

function inline(html, js, css) {
  const styleTag = /<link rel="stylesheet" href="style\.css">/;
  const scriptTag = /<script type="module" src="app\.js"><\/script>/;
  if (!styleTag.test(html) || !scriptTag.test(html)) {
    throw new Error('src/index.html must keep <link rel="stylesheet" href="style.css"> and <script type="module" src="app.js"></script>');
  }
  // Nothing inside the inlined code may close its element early.
  const safeJs = js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
  const safeCss = css.replace(/<\/(style)/gi, '<\\/$1');
  const notice = '<!-- Includes uPlot (https://github.com/leeoniya/uPlot), Copyright (c) 2022 Leon Sorokin, MIT License. -->';
  return html
    .replace(/<!doctype html>\n?/i, (m) => `${m}${notice}\n`)
    .replace(styleTag, () => `<style>${safeCss}</style>`)
    .replace(scriptTag, () => `<script type="module">${safeJs}</script>`)
    .replace(/\n\s*\n/g, '\n');
}

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

async function build() {
  const t0 = Date.now();
  const { js, css } = await bundle();
  const html = inline(fs.readFileSync(path.join(SRC, 'index.html'), 'utf8'), js, css);
  const raw = Buffer.from(html, 'utf8');
  const gz = zlib.gzipSync(raw, { level: 9 });
  fs.mkdirSync(DIST, { recursive: true });
  fs.writeFileSync(path.join(DIST, 'index.html'), raw);
  fs.writeFileSync(path.join(DIST, 'index.html.gz'), gz);
  console.log(`dist/index.html     ${String(raw.length).padStart(7)} bytes  ${kib(raw.length)}  (js ${kib(js.length)}, css ${kib(css.length)})`);
  console.log(`dist/index.html.gz  ${String(gz.length).padStart(7)} bytes  ${kib(gz.length)}  budget ${kib(BUDGET_GZ)}  (${Date.now() - t0} ms)`);
  if (gz.length > BUDGET_GZ) {
    throw new Error(`dist/index.html.gz is ${gz.length} bytes, over the ${BUDGET_GZ} byte budget`);
  }
}

async function main() {
  try {
    await build();
  } catch (e) {
    console.error(`build failed: ${e.errors ? [...new Set(e.errors.map((x) => x.text))].join("; ") : e.message}`);
    if (!process.argv.includes('--watch')) process.exit(1);
  }
  if (process.argv.includes('--watch')) {
    let timer = null;
    console.log('watching src/ …');
    fs.watch(SRC, { recursive: false }, () => {
      clearTimeout(timer);
      timer = setTimeout(() => build().catch((e) => console.error(`build failed: ${e.message}`)), 100);
    });
  }
}

main();
