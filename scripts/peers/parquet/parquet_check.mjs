// parquet_check.mjs: clipgo's embedding index (clipgo embed's Parquet file) as two independent
// Parquet readers see it: hyparquet (pure JavaScript) and DuckDB (@duckdb/node-api), both pinned
// in package-lock.json (npm ci). stages/index's interop test runs it and compares what they read
// with clipgo's own reader, value for value.
//
//   node parquet_check.mjs read INDEX DIM     JSON on stdout: each reader's keys, embedding column
//                                             types and embeddings (float32 values as numbers)
//   node parquet_check.mjs rewrite IN OUT     DuckDB: COPY (SELECT * FROM IN) TO OUT (Parquet),
//                                             which drops the writer's key/value metadata
//
// read fails (exit 1, the reason on stderr) when a reader cannot read the file, when an embedding
// is null or not DIM values long, or when DuckDB cannot cast a column to FLOAT[DIM].
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { DuckDBInstance } from '@duckdb/node-api'

const EMBEDDINGS = ['image_embedding', 'text_embedding']

function fail(msg) {
  process.stderr.write(`parquet_check: ${msg}\n`)
  process.exit(1)
}

// checkVectors fails unless every row of col is an array of dim finite numbers; it returns them
// as plain arrays.
function checkVectors(reader, col, rows, dim) {
  return rows.map((v, i) => {
    if (v == null) fail(`${reader}: ${col} row ${i} is null`)
    const a = Array.from(v)
    if (a.length !== dim) fail(`${reader}: ${col} row ${i} has ${a.length} values, want ${dim}`)
    if (!a.every(Number.isFinite)) fail(`${reader}: ${col} row ${i} holds a value that is not finite`)
    return a
  })
}

async function readHyparquet(path, dim) {
  const file = await asyncBufferFromFile(path)
  const metadata = await parquetMetadataAsync(file)
  const root = parquetSchema(metadata)
  const types = {}
  for (const child of root.children) {
    types[child.element.name] = child.element.logical_type?.type ?? child.element.converted_type ?? child.element.type ?? 'group'
  }
  const rows = await parquetReadObjects({ file, metadata, compressors, columns: ['key', ...EMBEDDINGS] })
  const out = {
    root_repetition: root.element.repetition_type ?? 'unset',
    types,
    rows: rows.length,
    key: rows.map(r => r.key),
  }
  for (const col of EMBEDDINGS) out[col] = checkVectors('hyparquet', col, rows.map(r => r[col]), dim)
  return out
}

function sqlString(s) {
  return `'${s.replaceAll("'", "''")}'`
}

async function withDuckDB(fn) {
  const instance = await DuckDBInstance.create(':memory:')
  const conn = await instance.connect()
  try {
    return await fn(conn)
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}

async function readDuckDB(path, dim) {
  return withDuckDB(async conn => {
    const src = `read_parquet(${sqlString(path)})`
    const out = { types: {} }
    const described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`)).getRowObjectsJS()
    for (const r of described) out.types[r.column_name] = r.column_type
    const casts = EMBEDDINGS.map(c => `CAST(${c} AS FLOAT[${dim}]) AS ${c}`).join(', ')
    let rows
    try {
      rows = (await conn.runAndReadAll(`SELECT key, ${casts} FROM ${src}`)).getRowObjectsJS()
    } catch (e) {
      fail(`duckdb: cannot cast the embeddings to FLOAT[${dim}]: ${e.message}`)
    }
    out.rows = rows.length
    out.key = rows.map(r => r.key)
    for (const col of EMBEDDINGS) out[col] = checkVectors('duckdb', col, rows.map(r => r[col]?.items ?? r[col]), dim)
    return out
  })
}

async function rewrite(src, dst) {
  await withDuckDB(conn =>
    conn.run(`COPY (SELECT * FROM read_parquet(${sqlString(src)})) TO ${sqlString(dst)} (FORMAT parquet)`))
}

const [cmd, a, b] = process.argv.slice(2)
try {
  if (cmd === 'read' && a && /^[1-9][0-9]*$/.test(b ?? '')) {
    const dim = Number(b)
    const result = { hyparquet: await readHyparquet(a, dim), duckdb: await readDuckDB(a, dim) }
    process.stdout.write(JSON.stringify(result) + '\n')
  } else if (cmd === 'rewrite' && a && b) {
    await rewrite(a, b)
  } else {
    fail('usage: node parquet_check.mjs read INDEX DIM | rewrite IN OUT')
  }
} catch (e) {
  fail(e.stack ?? String(e))
}
