"""Seeded synthetic catalog: short-video style items with believable templated text.

The generator is a pure function of ``SyntheticCatalogConfig`` (same seed, same catalog).
Creators have one or two specialty topics, a production quality and a reach (Zipf); an
item takes its creator's primary specialty, sometimes a second specialty or a random extra
topic; its title and description are filled from per-topic phrase lists. Quality mixes the
creator's level with item noise; popularity grows with reach, quality and time since
release; the latent vector is a topic centroid plus item noise, so the latent space and the
topics agree.
"""

from __future__ import annotations

import numpy as np

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.config import SyntheticCatalogConfig

# topic -> (subjects, formats): titles are "<format>: <subject>" style, descriptions mix both.
TOPIC_VOCABULARY: dict[str, tuple[list[str], list[str]]] = {
    "cooking": (
        [
            "one-pot vegetarian curry",
            "15-minute garlic noodles",
            "sourdough from scratch",
            "crispy tofu bowls",
            "weeknight lemon pasta",
            "street-style tacos",
        ],
        ["recipe", "kitchen hack", "cook-along"],
    ),
    "fitness": (
        [
            "a 20-minute full-body workout",
            "kettlebell basics",
            "mobility for desk workers",
            "beginner running form",
            "a core routine without equipment",
        ],
        ["workout", "coach tips", "training log"],
    ),
    "travel": (
        [
            "three days in Lisbon",
            "night trains across the Alps",
            "Kyoto on a budget",
            "hidden beaches of Crete",
            "a road trip through Patagonia",
        ],
        ["travel vlog", "itinerary", "city guide"],
    ),
    "gaming": (
        [
            "a speedrun route explained",
            "the hardest boss, no damage",
            "indie games worth it",
            "a retro console restoration",
            "strategy for ranked play",
        ],
        ["gameplay", "review", "walkthrough"],
    ),
    "music": (
        [
            "a lo-fi beat from a voice memo",
            "the chord trick behind every ballad",
            "a street piano performance",
            "building a synth patch",
            "drum grooves for beginners",
        ],
        ["performance", "lesson", "studio session"],
    ),
    "comedy": (
        [
            "office meetings, acted out",
            "when the group chat goes silent",
            "a stand-up bit about airports",
            "pets judging their owners",
            "parody ads",
        ],
        ["sketch", "stand-up clip", "skit"],
    ),
    "science": (
        [
            "why the sky is blue, really",
            "a home-made cloud chamber",
            "how vaccines train cells",
            "black holes in five minutes",
            "the chemistry of caramel",
        ],
        ["explainer", "experiment", "deep dive"],
    ),
    "technology": (
        [
            "a phone teardown",
            "building a home server",
            "the chip shortage explained",
            "keyboard mods",
            "which laptop for students",
        ],
        ["review", "unboxing", "explainer"],
    ),
    "fashion": (
        [
            "a capsule wardrobe for autumn",
            "thrift flip: denim jacket",
            "tailoring basics",
            "five ways to wear a scarf",
            "sneaker care",
        ],
        ["lookbook", "styling tips", "haul"],
    ),
    "beauty": (
        [
            "a five-minute morning routine",
            "skincare myths",
            "braids for short hair",
            "sunscreen compared",
            "a salon-style blowout at home",
        ],
        ["tutorial", "routine", "product test"],
    ),
    "pets": (
        [
            "teaching a puppy to wait",
            "a cat that opens doors",
            "rescue-dog first week",
            "aquarium setup",
            "grooming a fluffy dog",
        ],
        ["pet clip", "training tips", "day in the life"],
    ),
    "sports": (
        [
            "last-minute goals of the season",
            "the perfect free throw",
            "cycling climbs ranked",
            "a marathon finish",
            "tennis footwork drills",
        ],
        ["highlights", "analysis", "drill"],
    ),
    "news": (
        [
            "this week in sixty seconds",
            "elections explained",
            "the housing market update",
            "climate talks recap",
            "a local council story",
        ],
        ["briefing", "explainer", "report"],
    ),
    "finance": (
        [
            "index funds for beginners",
            "budgeting on a student income",
            "how inflation works",
            "reading a payslip",
            "saving for a first home",
        ],
        ["money tips", "explainer", "case study"],
    ),
    "diy": (
        [
            "fixing a dripping tap",
            "a floating shelf in an afternoon",
            "upcycled pallet bench",
            "painting a room like a pro",
            "tiling a small bathroom",
        ],
        ["how-to", "project build", "repair"],
    ),
    "gardening": (
        [
            "tomatoes on a balcony",
            "composting in a flat",
            "pruning roses",
            "a wildflower meadow from seed",
            "houseplants that survive anything",
        ],
        ["garden tour", "how-to", "season guide"],
    ),
    "art": (
        [
            "watercolour skies",
            "a portrait in charcoal",
            "pottery on the wheel",
            "street mural time-lapse",
            "sketchbook tour",
        ],
        ["time-lapse", "tutorial", "studio visit"],
    ),
    "books": (
        [
            "five novels for a rainy week",
            "an author interview",
            "annotating a classic",
            "fantasy series ranked",
            "a reading slump cure",
        ],
        ["book review", "recommendations", "reading vlog"],
    ),
    "film": (
        [
            "the one-take scene explained",
            "a director's visual style",
            "soundtracks that carry",
            "underrated thrillers",
            "how practical effects work",
        ],
        ["video essay", "review", "behind the scenes"],
    ),
    "history": (
        [
            "the fall of a Bronze Age city",
            "a day in medieval London",
            "the space race",
            "letters from the front",
            "ancient recipes tested",
        ],
        ["documentary short", "storytime", "explainer"],
    ),
    "parenting": (
        [
            "bedtime without tears",
            "lunchbox ideas",
            "toddler tantrum tactics",
            "screen time rules that work",
            "a first day of school",
        ],
        ["tips", "family vlog", "Q&A"],
    ),
    "cars": (
        [
            "an electric car road test",
            "changing brake pads",
            "a classic restored",
            "track day onboard",
            "choosing winter tyres",
        ],
        ["test drive", "repair", "review"],
    ),
    "dance": (
        [
            "a viral routine broken down",
            "salsa basics",
            "breaking footwork",
            "contemporary solo",
            "wedding first dance",
        ],
        ["choreography", "tutorial", "performance"],
    ),
    "nature": (
        [
            "a storm over the plains",
            "hummingbirds in slow motion",
            "coral reef night dive",
            "foxes in the city",
            "northern lights time-lapse",
        ],
        ["wildlife clip", "documentary short", "field diary"],
    ),
}

FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Femi",
    "Gus",
    "Hana",
    "Ivo",
    "Jun",
    "Kira",
    "Luca",
    "Mia",
    "Nour",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sami",
    "Tariq",
    "Uma",
    "Vik",
    "Wen",
    "Yara",
    "Zoe",
]
LAST_NAMES = [
    "Alves",
    "Brandt",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Singh",
    "Tanaka",
]
CHANNEL_WORDS = ["Kitchen", "Lab", "Studio", "Corner", "Diaries", "Club", "Workshop", "Daily"]


def generate_synthetic_catalog(config: SyntheticCatalogConfig | None = None) -> Catalog:
    """Build a synthetic catalog; deterministic in ``config`` (including its seed)."""
    cfg = config or SyntheticCatalogConfig()
    rng = np.random.default_rng(cfg.seed)
    topic_names = list(TOPIC_VOCABULARY)[: cfg.n_topics]
    n, t, c, d = cfg.n_items, cfg.n_topics, cfg.n_creators, cfg.latent_dim

    # creators: specialties, quality level, reach
    primary = rng.integers(0, t, size=c)
    secondary = np.where(rng.random(c) < 0.5, rng.integers(0, t, size=c), primary)
    creator_quality = rng.beta(4.0, 3.0, size=c)
    reach = 1.0 / np.arange(1, c + 1) ** cfg.popularity_zipf
    reach = rng.permutation(reach)
    creator_names = []
    for j in range(c):
        first, last = FIRST_NAMES[j % len(FIRST_NAMES)], LAST_NAMES[(j * 7) % len(LAST_NAMES)]
        word = CHANNEL_WORDS[int(primary[j]) % len(CHANNEL_WORDS)]
        creator_names.append(f"{first} {last}'s {topic_names[primary[j]].title()} {word}")

    # items: creator by reach^0.5 (big creators publish more), topics from specialties
    creator = rng.choice(c, size=n, p=np.sqrt(reach) / np.sqrt(reach).sum())
    topics = np.zeros((n, t), dtype=np.float32)
    rows = np.arange(n)
    topics[rows, primary[creator]] = 1.0
    second = rng.random(n) < 0.5
    topics[rows[second], secondary[creator[second]]] = 1.0
    for _ in range(cfg.max_topics_per_item - 1):
        extra = rng.random(n) < 0.2
        topics[rows[extra], rng.integers(0, t, size=int(extra.sum()))] = 1.0
    while (topics.sum(1) > cfg.max_topics_per_item).any():
        over = np.flatnonzero(topics.sum(1) > cfg.max_topics_per_item)
        for i in over:  # rare; only rows with too many topics
            on = np.flatnonzero(topics[i])
            topics[i, on[-1]] = 0.0

    quality = np.clip(0.6 * creator_quality[creator] + 0.4 * rng.beta(2.0, 2.0, n), 0.0, 1.0)
    duration = np.exp(rng.normal(np.log(2.0), 0.6, n)).clip(0.2, 30.0)
    release_time = 20_000.0 - rng.uniform(0.0, cfg.horizon_days, n)
    age = release_time.max() - release_time
    popularity = rng.poisson(
        2000.0 * reach[creator] * (0.3 + quality) * (1.0 - np.exp(-(age + 1.0) / 30.0))
    ).astype(np.float32)

    centroids = rng.normal(0.0, 1.0, (t, d))
    latent = (topics / topics.sum(1, keepdims=True)) @ centroids + rng.normal(0.0, 0.7, (n, d))
    latent /= np.linalg.norm(latent, axis=1, keepdims=True) + 1e-8

    titles, descriptions = [], []
    for i in range(n):
        on = np.flatnonzero(topics[i])
        main = (
            topic_names[on[0]]
            if topics[i, primary[creator[i]]] == 0
            else topic_names[primary[creator[i]]]
        )
        subjects, formats = TOPIC_VOCABULARY[main]
        subject = subjects[(i * 31 + cfg.seed) % len(subjects)]
        fmt = formats[(i * 17) % len(formats)]
        titles.append(f"{subject[0].upper()}{subject[1:]} ({fmt}, #{i + 1})")
        tags = ", ".join(topic_names[k] for k in on)
        descriptions.append(
            f"A {duration[i]:.0f}-minute {fmt} by {creator_names[creator[i]]} about {subject}. "
            f"Topics: {tags}."
        )

    return Catalog(
        name=f"synthetic-{n}-seed{cfg.seed}",
        item_ids=np.arange(n, dtype=np.int64),
        titles=titles,
        descriptions=descriptions,
        topics=topics,
        topic_names=topic_names,
        creator=creator.astype(np.int64),
        creator_names=creator_names,
        quality=quality.astype(np.float32),
        duration=duration.astype(np.float32),
        popularity=popularity,
        release_time=release_time.astype(np.float32),
        latent=latent.astype(np.float32),
        meta={"source": "synthetic", "config": cfg.model_dump()},
    )
