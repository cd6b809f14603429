"""Writes ftfy_cases.jsonl: texts written or generated here, each with ftfy.fix_text's output.

ftfy is not packaged for Debian, so its published source is the reference: run this with
ftfy's source tree (https://github.com/rspeer/python-ftfy, 6.3.1) on PYTHONPATH, from
text/tokenizer:
    PYTHONPATH=/path/to/python-ftfy python3 testdata/gen_ftfy_cases.py > testdata/ftfy_cases.jsonl

The adversarial part turns clean phrases into what ftfy exists to repair: UTF-8 read as each
single-byte encoding ftfy knows (once, twice, in one word only), no-break spaces lost, bytes
lost to '?' or U+FFFD, HTML entities (escaped once or twice, upper-cased, inside markup),
curly quotes, ligatures, full-width forms, terminal escapes, control characters, CR line ends.
"""
import html
import json
import random
import sys

import ftfy

PHRASES = [
    "a dog runs across the grass",
    "Two children play on the beach at sunset.",
    "café crème and a croissant",
    "the naïve façade of the old château",
    "São Paulo à noite, com as luzes acesas",
    "Müller's Straße, Größe 42",
    "El niño comió piñata en la mañana",
    "Zażółć gęślą jaźń",
    "Příliš žluťoučký kůň úpěl ďábelské ódy",
    "Съешь же ещё этих мягких французских булок",
    "Το γρήγορο καφέ αλεπού πηδά",
    "Pchnąć w tę łódź jeża lub ośm skrzyń fig",
    "İstanbul'da güzel bir gün",
    "Ķēķis un ģimene Rīgā",
    "東京の夜景と富士山",
    "서울의 밤거리",
    "a cat 🐱 sleeping on a sofa 🛋️",
    "price: 5 € or £4, about ¥700",
    "temperature 20 °C ± 2",
    "he said “hello” and ‘goodbye’",
    "it’s a dog’s life — really…",
    "«Bonjour» dit-il",
    "fi and fl ligatures: ﬁsh ﬂower ﬀ ﬃ",
    "ＦＵＬＬ ＷＩＤＴＨ　ｔｅｘｔ １２３",
    "ｶﾀｶﾅ halfwidth",
    "x² + y³ = z¹",
    "½ cup of sugar, ¼ tsp salt",
    "naïve résumé coöperate",
    "ĳsje in Ĳmuiden",
    "the Ǳungla and ǆem",
]

ENCODINGS = ["windows-1252", "latin-1", "windows-1251", "windows-1250", "windows-1253",
             "windows-1254", "windows-1257", "iso-8859-2", "mac_roman", "cp437"]


def mojibake(text, enc):
    try:
        return text.encode("utf-8").decode(enc)
    except UnicodeDecodeError:
        return None


def variants(rng, phrase):
    yield phrase
    for enc in ENCODINGS:
        bad = mojibake(phrase, enc)
        if bad is None or bad == phrase:
            continue
        yield bad
        twice = mojibake(bad, enc)
        if twice is not None:
            yield twice
        words = phrase.split(" ")
        k = rng.randrange(len(words))
        one = mojibake(words[k], enc)
        if one is not None:
            yield " ".join(words[:k] + [one] + words[k + 1:])
        yield bad.replace("\xa0", " ")
        chars = list(bad)
        highs = [i for i, c in enumerate(chars) if ord(c) >= 0x80]
        if highs:
            chars[rng.choice(highs)] = rng.choice(["?", "\ufffd"])
            yield "".join(chars)
    yield html.escape(phrase)
    yield html.escape(html.escape(phrase))
    yield "".join(f"&#{ord(c)};" if ord(c) > 127 and rng.random() < 0.5 else c for c in phrase)
    yield "".join(f"&#x{ord(c):X};" if ord(c) > 127 else c for c in phrase)
    yield "<b>" + html.escape(phrase) + "</b>"
    yield phrase.upper().replace(" ", " &AMP; ", 1)
    yield "\x1b[1;31m" + phrase + "\x1b[0m"
    yield phrase.replace(" ", "\r\n", 1) + "\u2028end\u0085"
    yield "\ufeff" + phrase + "\x00\x07\x7f\u206a"
    yield phrase + "\n" + (mojibake(phrase, "windows-1252") or mojibake(phrase, "latin-1"))


def main():
    rng = random.Random(20261207)
    seen = set()
    extra = [
        "&NTILDE;o&SZLIG; &FFLIG; &amp;amp;amp;amp; &lt;tag&gt; &#x1F600; &#128512; &#0; &#xD800;",
        "fish &amp; chips < cheap & cheerful\nbut &amp; here &eacute;",
        "&eacute;&Eacute;&EACUTE;&hellip;&nbsp;&mdash;&ndash;&ldquo;&rdquo;&copy;&reg;&trade;",
        "&ampx; &notit; &#65;&#x41;&#X41;&#; &#x; &abcdefghijklmnopqrstuvwxyz;",
        "voilÃ  le travail", "voilÃ le travail", "Ã  la carte", "Ã quele tempo", "Ã s vezes",
        "CÃ³mo estÃ¡s", "Ã\xa0", "Ã", "Â", "Â£5", "Ã©", "â€™", "â€œquotedâ€\x9d", "Ã¢â‚¬â„¢",
        "\x80\x81\x8d\x9d\x9f text", "caf\x82 \x93q\x94", "ð\x9f\x98\x80", "Ã°Å¸ËœÂ€",
        "\xed\xa0\xbd\xed\xb8\x80", "Ã\x80", "×‘×”×•×“×˘×”", "◊ë◊î◊ï◊ì◊¢◊î", "Ð¿Ñ€Ð¸Ð²ÐµÑ‚",
        "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "â”€â”€ box", "â–ˆ", "Ãƒ", "Ã±", "Ã‘", "Ã\x8d", "â\x80\x99",
        "ＬＯＵＤ　ＮＯＩＳＥＳ", "\uff61\uff62\uffe8\uffee", "\u3000\u3000x",
        "tab\there\fform\vvert", "\x1b[38;5;200mcolour\x1b[0m \x1b[K \x1b[", "\x1b[1\u0662m",
        "\r\n\r\r\n", "\u2029\u2028\x85", "\ufff9\ufffa\ufffb\ufffc\ufffd", "\u206f\u206e",
        "e\u0301 A\u030a \uac00\u11a8", "\u212b \u2126 \uf900", "ŉ ǲ ǅ ǈ ǋ ﬅ ﬆ",
        "\u02bcx\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f",
        "×² ×³ à² √± ≈° ‚Äì ‚âà вЂ ГўВЂВљa Ã¡ a Ã  Â» β€™ ā€",
        "Ø¨Ø§Ù„Ø¹Ø±Ø¨ÙŠ", "ÙˆØ§Ù„", "Œx œ1", "Ð°Â°", "Ñ‡Ðµ",
    ]
    for text in extra + [v for p in PHRASES for v in variants(rng, p)]:
        if text in seen:
            continue
        seen.add(text)
        out = ftfy.fix_text(text)
        sys.stdout.write(json.dumps({"in": text, "out": out}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
