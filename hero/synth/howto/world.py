"""The synthetic how-to channel's world: workspaces seen from above, materials, tools, actions, and narration.

Nothing here is shared with the TV show's world (hero.synth.world): other objects, other actions, other colours
(every colour keeps an RGB distance of at least 30 from the TV palette) and other words (a test checks that the
two domains share only function words), so a model pretrained on one domain has no shortcut into the other.
Every step is visible: its tool appears on the workspace, moves in the action's own pattern, and leaves a lasting
change on the material (peeled, painted, holes, cut into pieces ...).
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Material:
    """An object on the workspace, seen from above: ``shape`` "bar" | "round" | "slab" | "sheet", ``size`` (w, h)
    in pixels at 160x120; ``inner`` is the colour that peeling or sanding reveals."""

    name: str
    color: RGB
    inner: RGB
    shape: str
    size: tuple[int, int]


@dataclass(frozen=True)
class Action:
    """A step kind and the one tool that performs it. ``terminal``: the material is cut apart and takes no
    further step. Word forms feed the narration, the queries and the questions."""

    name: str
    tool: str
    third: str  # "chops"
    participle: str  # "chopped"
    gerund: str  # "chopping"
    terminal: bool = False


@dataclass(frozen=True)
class Project:
    """A kind of tutorial: its workspace look and the materials it works on."""

    name: str
    surface: RGB
    pattern: RGB
    materials: tuple[str, ...]


MATERIALS = (
    Material("carrot", (240, 110, 20), (255, 190, 120), "bar", (48, 10)),
    Material("potato", (160, 120, 60), (255, 250, 160), "round", (28, 20)),
    Material("cucumber", (20, 90, 30), (190, 235, 150), "bar", (50, 12)),
    Material("dough", (255, 245, 215), (255, 245, 215), "round", (26, 20)),
    Material("onion", (140, 30, 80), (140, 30, 80), "round", (22, 22)),
    Material("plank", (170, 110, 60), (240, 200, 110), "bar", (80, 18)),
    Material("panel", (200, 150, 90), (240, 200, 110), "slab", (36, 28)),
    Material("dowel", (70, 40, 0), (170, 110, 60), "bar", (64, 8)),
    Material("sheet", (255, 255, 200), (255, 255, 200), "sheet", (50, 28)),
    Material("card", (120, 160, 255), (120, 160, 255), "sheet", (40, 24)),
    Material("ribbon", (200, 20, 90), (200, 20, 90), "bar", (70, 6)),
)

ACTIONS = (
    Action("chop", "knife", "chops", "chopped", "chopping", terminal=True),
    Action("peel", "peeler", "peels", "peeled", "peeling"),
    Action("season", "shaker", "seasons", "seasoned", "seasoning"),
    Action("roll", "roller", "rolls", "rolled", "rolling"),
    Action("saw", "saw", "saws", "sawn", "sawing", terminal=True),
    Action("sand", "sandpaper", "sands", "sanded", "sanding"),
    Action("drill", "drill", "drills", "drilled", "drilling"),
    Action("paint", "brush", "paints", "painted", "painting"),
    Action("trim", "scissors", "trims", "trimmed", "trimming"),
    Action("measure", "ruler", "measures", "measured", "measuring"),
)
TOOLS = tuple(a.tool for a in ACTIONS)

APPLIES = {  # material -> the actions that make sense on it
    "carrot": ("peel", "season", "chop"),
    "potato": ("peel", "season", "chop"),
    "cucumber": ("peel", "season", "chop"),
    "dough": ("roll", "season", "chop"),
    "onion": ("season", "chop"),
    "plank": ("measure", "sand", "drill", "paint", "saw"),
    "panel": ("sand", "drill", "paint"),
    "dowel": ("measure", "sand", "saw"),
    "sheet": ("measure", "paint", "trim"),
    "card": ("paint", "trim"),
    "ribbon": ("measure", "trim"),
}

NOT_AFTER = {"sand": ("paint",)}
"""Action -> actions after which it is no longer done on a material (one sands before painting, never after)."""

PROJECTS = (
    Project("cooking", (110, 160, 130), (40, 55, 95), ("carrot", "potato", "cucumber", "dough", "onion")),
    Project("woodworking", (120, 130, 150), (105, 115, 140), ("plank", "panel", "dowel")),
    Project("papercraft", (20, 95, 75), (60, 140, 115), ("sheet", "card", "ribbon")),
)

PAINTS = {"teal": (0, 150, 140), "crimson": (180, 0, 40), "navy": (20, 30, 110), "mustard": (210, 170, 20),
          "magenta": (255, 0, 255), "olive": (110, 120, 20)}
"""Paint colours: a paint step's colour is seen on the material and named in some narration and queries."""

GLOVE, ARM, PENCIL, SPICE = (100, 210, 255), (80, 170, 235), (90, 0, 150), (255, 40, 0)
TOOL_LOOK: dict[str, tuple[RGB, RGB]] = {  # tool -> (working part, grip)
    "knife": ((140, 150, 160), (110, 0, 0)),
    "peeler": ((170, 170, 175), (50, 200, 120)),
    "shaker": ((200, 60, 255), (150, 155, 165)),
    "roller": ((235, 150, 80), (110, 0, 0)),
    "saw": ((150, 155, 165), (255, 80, 140)),
    "sandpaper": ((190, 150, 100), (190, 150, 100)),
    "drill": ((150, 155, 165), (250, 200, 0)),
    "brush": ((180, 30, 150), (180, 30, 150)),
    "scissors": ((150, 155, 165), (255, 120, 60)),
    "ruler": ((200, 255, 120), (200, 255, 120)),
}

# Narration (automatic-speech style: lower case, no punctuation, no speaker). {v} verb, {g} gerund, {o} the
# material (followed by the paint colour for paint steps), {t} tool.
STEP_LINES = (
    "now we {v} the {o} with the {t}",
    "next you {v} your {o} using a {t}",
    "so i am {g} the {o} with my {t}",
    "okay {g} the {o} right now",
    "{v} it carefully like so",
    "you want the {t} for this step",
)
CHATTER = (
    "remember to subscribe if you enjoy these videos",
    "um alright",
    "okay so",
    "perfect",
    "and that is it for this part",
    "comment below if you try this",
    "lovely",
)
# Off-topic facts only the narration carries: topic -> (spoken line, t-query, question, answer pool); {x} value.
WEATHER = ("rainy", "windy", "stormy", "foggy", "snowy", "humid")
PETS = ("parrot", "kitten", "puppy", "hamster", "ferret", "gecko")
RELATIVES = ("niece", "nephew", "grandma", "grandpa", "cousin", "aunt", "uncle", "neighbour")
ASIDES = {
    "weather": ("sorry about the noise it is really {x} outside", "The narrator mentions the weather being {x}.",
                "What is the weather like according to the narrator?", WEATHER),
    "pet": ("my {x} keeps climbing onto the bench", "The narrator talks about a pet {x}.",
            "Which pet does the narrator talk about?", PETS),
    "gift": ("i am making this one as a present for my {x}", "The narrator is making a present for their {x}.",
             "Who is the present for?", RELATIVES),
}
CHANNEL = "Workbench Tutorials"
