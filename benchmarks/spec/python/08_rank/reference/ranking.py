def rank(scores):
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    out = []
    for i, (name, score) in enumerate(ordered):
        position = out[-1][2] if out and out[-1][1] == score else i + 1
        out.append((name, score, position))
    return out
