"""Header decoding on hostile input: seconds for 25,000 / 50,000 / 100,000 RFC 2047
encoded-words in a Subject, and their ratio (linear decoding: ~4x from 25,000 to 100,000;
the quadratic decoder this replaced took ~14x). Prints figures; asserts nothing.

    python bench/hostile_headers.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_hostile_headers import measure


def main() -> None:
    """Print the time and peak RSS of one parse per word count, each in a fresh interpreter."""
    seconds: dict[int, float] = {}
    for words in (25_000, 50_000, 100_000):
        result = measure(words)
        seconds[words] = float(str(result["seconds"]))
        print(
            f"{words:>7} encoded-words ({int(str(result['bytes'])):,} bytes): "
            f"{seconds[words]:.3f} s, peak RSS {int(str(result['rss_kb'])) // 1024} MiB"
        )
    print(f"ratio 100,000 / 25,000 words: {seconds[100_000] / seconds[25_000]:.1f}x")


if __name__ == "__main__":
    main()
