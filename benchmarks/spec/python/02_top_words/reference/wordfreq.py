import re
from collections import Counter


def top_words(text, k):
    if k < 0:
        raise ValueError("k must not be negative")
    counts = Counter(w.lower() for w in re.findall(r"[A-Za-z]+", text))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
