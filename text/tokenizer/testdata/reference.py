"""Reference CLIP tokenization for the edge cases in edge_texts.json.

Follows OpenAI's clip/simple_tokenizer.py step by step:
    ftfy.fix_text; html.unescape twice, strip; regex \\s+ -> ' ', strip; str.lower;
    regex.findall of the split pattern with IGNORECASE; bytes_to_unicode; BPE with </w>.
Usage (Python 3 with the `regex` module; ftfy is not packaged for Debian, so its source tree,
https://github.com/rspeer/python-ftfy at 6.3.1, goes on PYTHONPATH), from text/tokenizer:
    PYTHONPATH=/path/to/python-ftfy python3 testdata/reference.py < testdata/edge_texts.json > testdata/edge_tokens.jsonl
"""
import gzip
import html
import json
import sys

import ftfy
import regex

CONTEXT = 16  # a short context, so that truncation is exercised too


def byte_symbols():
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    rest = [b for b in range(256) if b not in printable]
    sym = {b: chr(b) for b in printable}
    sym.update({b: chr(256 + i) for i, b in enumerate(rest)})
    return sym, printable + rest


def load(path):
    sym, order = byte_symbols()
    lines = gzip.open(path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(l.split()) for l in lines]
    vocab = [sym[b] for b in order]
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return sym, {v: i for i, v in enumerate(vocab)}, {m: i for i, m in enumerate(merges)}


def bpe(word, ranks):
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
        pairs = list(zip(parts, parts[1:]))
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        out, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                out.append(parts[i] + parts[i + 1])
                i += 2
            else:
                out.append(parts[i])
                i += 1
        parts = out
    return parts


PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)


def encode(text, sym, encoder, ranks):
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    text = regex.sub(r"\s+", " ", text).strip().lower()
    ids = []
    for word in PATTERN.findall(text):
        if word in ("<|startoftext|>", "<|endoftext|>"):
            ids.append(encoder[word])
            continue
        mapped = "".join(sym[b] for b in word.encode("utf-8"))
        ids += [encoder[p] for p in bpe(mapped, ranks)]
    return ids


def main():
    sym, encoder, ranks = load("bpe_simple_vocab_16e6.txt.gz")
    for text in json.load(sys.stdin):
        ids = encode(text, sym, encoder, ranks)
        ctx = [encoder["<|startoftext|>"]] + ids + [encoder["<|endoftext|>"]]
        if len(ctx) > CONTEXT:
            ctx = ctx[:CONTEXT]
            ctx[-1] = encoder["<|endoftext|>"]
        ctx += [0] * (CONTEXT - len(ctx))
        print(json.dumps({"text": text, "ids": ids, "context16": ctx}, ensure_ascii=False))


main()
