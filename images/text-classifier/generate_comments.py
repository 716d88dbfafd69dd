"""Generate the labelled moderation dataset `data/comments.csv` (text,label) deterministically from a seed.

Why generated: the reddit /r/science dataset used by Seldon's original example is downloaded at build time
from a personal GitHub repository with no stated licence, and it holds real users' comments. This
generator writes a dataset in the same shape (one comment per row, label 1 = removed by moderators,
0 = kept) that we can ship under the repository's licence, with no personal data.

How it stays hard: every comment is written in one *style* (substantive discussion, a question on
method, a citation, an anecdote, a joke, incivility, self-promotion, a conspiracy take, politics,
non-English, a short "thanks"...), and each style is removed only with a probability (moderators
disagree), so no rule on the text reaches 100 %. A third of the comments add a sentence of another
style, all styles share the same post topics and filler words, and the text carries the noise real
comments have (HTML entities, markdown quotes and links, URLs, emoji, newlines, typos). The best any
classifier can do if it recognised the style perfectly is printed as `style ceiling`.

    python3 generate_comments.py                   # writes data/comments.csv with the default seed
    python3 generate_comments.py --rows 6000 --seed 20230815 --out data/comments.csv

Standard library only, so it runs anywhere; the same seed and row count always give the same file.
"""

from __future__ import annotations

import argparse
import csv
import random
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SEED = 20230815  # the Seldon Core 1.17.1 release date
DEFAULT_ROWS = 6000
HERE = Path(__file__).resolve().parent

TOPICS = [
    ("a new malaria vaccine", "the vaccine", "efficacy", "vaccination"),
    ("microplastics in drinking water", "microplastics", "exposure", "water"),
    ("sleep deprivation and memory", "sleep", "memory", "sleep loss"),
    ("intermittent fasting", "fasting", "weight loss", "diet"),
    ("a nearby exoplanet with water vapour", "the exoplanet", "atmosphere", "the telescope"),
    ("sea level rise by 2100", "sea level", "warming", "ice sheets"),
    ("coffee and heart health", "coffee", "heart disease", "caffeine"),
    ("gut bacteria and depression", "the microbiome", "depression", "gut bacteria"),
    ("room-temperature superconductors", "the superconductor", "resistance", "the material"),
    ("screen time in toddlers", "screen time", "language delay", "children"),
    ("a CRISPR therapy for sickle cell", "the gene therapy", "remission", "CRISPR"),
    ("bee decline and pesticides", "pesticides", "bee colonies", "neonicotinoids"),
    ("dark matter detector results", "dark matter", "the detector", "background events"),
    ("ultra-processed food and cancer", "processed food", "cancer risk", "diet"),
    ("four-day work week trials", "the shorter week", "productivity", "burnout"),
    ("lab-grown meat emissions", "lab-grown meat", "emissions", "beef"),
    ("loneliness and mortality", "loneliness", "mortality", "social contact"),
    ("antibiotic resistance in hospitals", "resistant bacteria", "infections", "antibiotics"),
    ("a fusion reactor energy record", "the reactor", "net energy", "plasma"),
    ("bilingual children and attention", "bilingualism", "attention", "kids"),
    ("wildfire smoke and lung health", "wildfire smoke", "asthma", "air quality"),
    ("psilocybin for treatment-resistant depression", "psilocybin", "symptoms", "therapy"),
    ("octopus intelligence", "octopuses", "problem solving", "cephalopods"),
    ("daylight saving time and accidents", "the clock change", "accidents", "sleep"),
]

FIELDS = [
    "epidemiologist",
    "statistician",
    "nurse",
    "physicist",
    "ecologist",
    "neuroscientist",
    "PhD student",
    "pharmacologist",
    "climate modeller",
    "data scientist",
    "GP",
    "biochemist",
]
METHODS = [
    "sample size",
    "control group",
    "effect size",
    "confidence interval",
    "follow-up period",
    "p-value",
    "randomisation",
    "blinding",
    "dropout rate",
    "funding source",
    "preregistration",
    "baseline",
]
NUMBERS = ["12", "40", "200", "1,500", "3,000", "60,000", "8", "95", "0.3", "2.5"]
RELATIVES = [
    "my grandma",
    "my uncle",
    "my neighbour",
    "my dad",
    "a guy at work",
    "my sister",
    "my roommate",
    "my ex",
    "my cousin",
    "my dentist",
]
EMOJI = ["😂", "🤣", "🙄", "👍", "🔥", "💀", "🤡", "🧐", "🙏", "😡", "🚀", "✨"]
PAPER_URLS = [
    "https://doi.org/10.1038/s41586-023-0{n}",
    "https://www.nature.com/articles/s41591-02{n}",
    "https://pubmed.ncbi.nlm.nih.gov/3{n}/",
    "https://www.science.org/doi/10.1126/science.ad{n}",
    "https://arxiv.org/abs/2306.{n}",
]
PROMO_URLS = [
    "https://youtube.com/watch?v=x{n}",
    "https://bit.ly/{n}sci",
    "https://www.truth-health{n}.com",
    "https://t.me/cryptosignals{n}",
    "https://my-science-blog{n}.net/post",
]
FOREIGN = [
    "Esto es muy interesante, ¿alguien tiene el artículo completo?",
    "Ich glaube diese Studie nicht, die Stichprobe ist viel zu klein.",
    "C'est exactement ce que je disais depuis des années !",
    "Isso é óbvio, todo mundo sabe disso.",
    "Questo studio è finanziato dalle aziende, non fidatevi.",
    "Dit is echt fascinerend, bedankt voor het delen.",
    "これは面白い研究ですね",
    "Очень интересно, спасибо за статью",
    "这个研究的样本太小了",
    "Bu çalışma çok ilginç ama kaynak nerede?",  # noqa: RUF001 (Turkish dotless i)
]


@dataclass(frozen=True)
class Style:
    name: str
    weight: float  # share of comments written in this style
    p_removed: float  # probability that moderators removed a comment of this style
    templates: tuple[str, ...]


STYLES = [
    Style(
        "discussion",
        0.22,
        0.07,
        (
            "The {m} here is what matters: with {n} participants the effect on {b} is small but consistent.",
            "Interesting that {a} changed {b} only in the subgroup with higher {c}. That fits earlier work.",
            "This matches the mechanism people proposed a decade ago, {a} affecting {b} through {c}.",
            "Worth noting the paper reports an association, not causation; {c} could explain part of it.",
            "The effect size is modest. For {b} a change of {n}% is meaningful at population scale though.",
            "They adjusted for age and income, but {c} was self-reported, which adds a lot of noise.",
            "I read the full text. The {m} is reasonable and the result replicates their {n}-person pilot.",
            "If {a} really shifts {b}, we should see it in the registry data over the next few years.",
            "The authors are careful in the discussion section; the press release overstates it.",
            "Good summary, although the headline implies {a} causes {b}, which the study cannot show.",
        ),
    ),
    Style(
        "method_question",
        0.12,
        0.10,
        (
            "Does anyone know what the {m} was? The abstract does not say.",
            "How did they control for {c}? That seems like the obvious confounder for {b}.",
            "Was this preregistered? The {m} looks like it changed between the protocol and the paper.",
            "Genuine question: why is {n} participants enough to say anything about {b}?",
            "Can someone explain how they measured {b}? Is it a questionnaire or a clinical test?",
            "What was the {m} in the comparison arm, and were the groups similar at baseline?",
            "Is the {n}% relative or absolute? Without the baseline rate of {b} it is hard to judge.",
        ),
    ),
    Style(
        "citation",
        0.09,
        0.15,
        (
            "Here is the actual paper instead of the news article: {paper}",
            "Previous meta-analysis on {a} and {b} for context: [link to the review]({paper})",
            "Full text is open access: {paper} (see table 2 for the {m}).",
            "Related study with the opposite result on {b}: {paper}",
            "Source for anyone asking about the {m}: {paper}",
        ),
    ),
    Style(
        "expert",
        0.07,
        0.10,
        (
            "As a {f}, I would be careful with the {m} in studies like this.",
            "{f} here. We see the link between {a} and {b} in clinic, but the evidence is still mixed.",
            "Speaking as a {f}: the mechanism is plausible, the {m} is the weak point.",
            "I'm a {f} and this is a solid paper, the {m} is better than most in this field.",
        ),
    ),
    Style(
        "thanks",
        0.07,
        0.45,
        (
            "Thanks for sharing, really interesting.",
            "Great article, thanks!",
            "Fascinating stuff about {a}.",
            "Wow, did not expect that about {b}.",
            "Saving this one. Thanks OP.",
            "This is so cool {e}",
        ),
    ),
    Style(
        "anecdote",
        0.10,
        0.70,
        (
            "{r} had {b} for years and {a} fixed it completely, so I believe this.",
            "Well {r} never cared about {a} and lived to 97, so go figure.",
            "Anecdotally, I tried {a} for a month and my {b} got way better.",
            "{r} is a doctor and says this is nonsense about {b}.",
            "I stopped worrying about {a} years ago and I feel great lol",
            "Same thing happened to {r}, {a} made {b} so much worse.",
        ),
    ),
    Style(
        "joke",
        0.09,
        0.80,
        (
            "So what you're saying is {a} is the new coffee {e}",
            "Username checks out {e}",
            "Scientists discover water is wet, more at 11 {e}",
            "Cool, now do one on whether {b} is affected by memes",
            "This is the way {e}{e}",
            "Can't have {b} problems if you never sleep {e}",
            "Instructions unclear, now I have {a} {e}",
            "Me reading this at 3am instead of sleeping {e}",
        ),
    ),
    Style(
        "incivility",
        0.08,
        0.88,
        (
            "Anyone who believes this about {a} is an idiot, read a book.",
            "You people will believe anything with a graph in it. Pathetic.",
            "What a stupid take, OP clearly didn't read past the title.",
            "Shut up, the {m} is fine and you obviously know nothing about {b}.",
            "Typical braindead comment section, nobody here understands {b}.",
            "Imagine being this dumb about {a} {e}",
        ),
    ),
    Style(
        "promo",
        0.05,
        0.95,
        (
            "I explain the truth about {a} on my channel, link in bio: {promo}",
            "Want to fix your {b} naturally? Check out my free guide {promo}",
            "Join our group for daily signals and real research on {a} {promo}",
            "My new video breaks this down in 5 minutes {e} {promo}",
            "Buy the supplement they don't want you to know about: {promo}",
        ),
    ),
    Style(
        "conspiracy",
        0.05,
        0.80,
        (
            "Follow the money. Who funded this {a} study? Big pharma as always.",
            "They have known about {a} for decades and hid it, wake up.",
            "Another paid study to push {a} on us. The {m} is rigged.",
            "Funny how {b} only became a problem once they could sell a cure for it.",
            "Mainstream science won't tell you the real cause of {b}, do your own research.",
        ),
    ),
    Style(
        "politics",
        0.04,
        0.75,
        (
            "And the government will ignore this like everything else about {b}.",
            "This is why we need to vote out the people blocking research on {a}.",
            "Politicians will twist this {a} study to fit their agenda, watch.",
            "Of course the other party will call {b} a hoax again.",
        ),
    ),
    Style("foreign", 0.02, 0.65, ("{foreign}",)),
]

SIDE_SENTENCES = {style.name: style.templates for style in STYLES if style.name not in {"foreign", "promo"}}


def _fill(template: str, rng: random.Random, topic: tuple[str, str, str, str]) -> str:
    title, subject, outcome, context = topic
    n = rng.randint(10, 99999)
    return template.format(
        a=subject,
        b=outcome,
        c=context,
        t=title,
        m=rng.choice(METHODS),
        n=rng.choice(NUMBERS),
        f=rng.choice(FIELDS),
        r=rng.choice(RELATIVES),
        e=rng.choice(EMOJI),
        paper=rng.choice(PAPER_URLS).format(n=n),
        promo=rng.choice(PROMO_URLS).format(n=n),
        foreign=rng.choice(FOREIGN),
    )


def _typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    index = rng.randrange(len(words))
    word = words[index]
    if len(word) > 4:
        cut = rng.randrange(1, len(word) - 1)
        words[index] = word[:cut] + word[cut + 1 :]
    return " ".join(words)


def _decorate(text: str, rng: random.Random, topic: tuple[str, str, str, str]) -> str:
    """Add the noise of real comments: quoted titles, entities, newlines, casing, typos, edits."""
    if rng.random() < 0.12:
        text = f"&gt; {topic[0]}\n\n{text}"
    if rng.random() < 0.10:
        text = text.replace(" and ", " &amp; ", 1)
    if rng.random() < 0.06:
        text = text.upper()
    elif rng.random() < 0.10:
        text = text.lower()
    if rng.random() < 0.15:
        text = _typo(text, rng)
    if rng.random() < 0.05:
        text += "\n\nEdit: " + rng.choice(["typo", "thanks for the gold!", "formatting", "wow this blew up"])
    if rng.random() < 0.04:
        text = f"<p>{text}</p>"
    return text


def generate(rows: int, seed: int) -> tuple[list[tuple[str, int]], dict[str, float]]:
    rng = random.Random(seed)
    weights = [style.weight for style in STYLES]
    out: list[tuple[str, int]] = []
    for _ in range(rows):
        style = rng.choices(STYLES, weights=weights)[0]
        topic = rng.choice(TOPICS)
        sentences = [_fill(rng.choice(style.templates), rng, topic)]
        if style.name != "foreign" and rng.random() < 0.33:
            side = rng.choice(list(SIDE_SENTENCES.values()))
            sentences.insert(rng.randrange(2), _fill(rng.choice(side), rng, topic))
        text = _decorate(" ".join(sentences), rng, topic)
        label = 1 if rng.random() < style.p_removed else 0
        out.append((text, label))
    total = sum(weights)
    stats = {
        "removed_share": sum(label for _, label in out) / rows,
        "style_ceiling": sum(s.weight / total * max(s.p_removed, 1 - s.p_removed) for s in STYLES),
    }
    return out, stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=HERE / "data" / "comments.csv")
    args = parser.parse_args()
    rows, stats = generate(args.rows, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    print(
        f"wrote {len(rows)} rows to {args.out} (seed {args.seed}): removed share {stats['removed_share']:.3f}, "
        f"majority baseline {max(stats['removed_share'], 1 - stats['removed_share']):.3f}, "
        f"style ceiling {stats['style_ceiling']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
