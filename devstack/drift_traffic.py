"""Traffic for the monitor's drift scenario: a crypto-spam wave, a kind of comment the training data lacks.

The shipped data set (images/text-classifier/data) has self-promotion, but none of this wave's vocabulary
(airdrops, memecoins, wallets, Telegram handles), so a monitor should see new words, other lengths, another label
mix and texts a classifier can tell from the reference. Seeded: the same seed gives the same texts, for the demo,
the tests and bench/bench_monitor.py.

`shifted(stationary, size, share, seed)` mixes a share of spam into stationary texts: share 1.0 is the full wave,
smaller shares are the weaker shifts the benchmark measures.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

OPENERS = (
    "Huge {coin} airdrop live now",
    "Claim your free {coin} tokens today",
    "{coin} is about to moon",
    "Last chance: {coin} presale closes tonight",
    "I turned 200 dollars into {amount} with {coin}",
    "Stop reading papers and start staking {coin}",
    "Whales are loading up on {coin}",
)
MIDDLES = (
    "connect your wallet and verify the seed phrase",
    "guaranteed 40x returns, zero risk",
    "the dev team just burned half the supply",
    "my signals group called it three days early",
    "withdrawals are instant, no KYC needed",
    "only 500 whitelist spots left",
)
CLOSERS = (
    "DM me on Telegram {handle}",
    "join the Discord before it fills up",
    "details at {url}",
    "WhatsApp {handle} for the invite link",
    "do not miss this one 🚀🚀🚀",
    "use referral code {code} for a bonus",
)
COINS = ("PEPEX", "MoonDoge", "SafeShiba", "ElonInu", "QuantumFloki", "BabyWojak", "HyperSol")
DOMAINS = ("coin-drop.example", "claim-airdrop.example", "moonsignals.example", "wallet-verify.example")


def spam_text(rng: random.Random) -> str:
    fill = {
        "coin": rng.choice(COINS),
        "amount": f"{rng.randint(5, 90)},000",
        "handle": f"@{rng.choice(['crypto', 'moon', 'signal', 'whale'])}_{rng.randint(10, 9999)}",
        "url": f"https://{rng.choice(DOMAINS)}/{rng.randint(1000, 99999)}",
        "code": f"{rng.choice(['MOON', 'PUMP', 'GEM'])}{rng.randint(100, 999)}",
    }
    parts = [rng.choice(OPENERS), rng.choice(MIDDLES), rng.choice(CLOSERS)]
    if rng.random() < 0.5:
        parts.insert(2, rng.choice(MIDDLES))
    text = "! ".join(part.format(**fill) for part in parts)
    return text.upper() if rng.random() < 0.15 else text


def spam_wave(size: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [spam_text(rng) for _ in range(size)]


def shifted(stationary: Sequence[str], size: int, share: float, seed: int) -> list[str]:
    """`size` texts: each spam with probability `share`, else a stationary text (drawn with replacement)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share {share} must be from 0 to 1")
    rng = random.Random(seed)
    return [spam_text(rng) if rng.random() < share else rng.choice(stationary) for _ in range(size)]
