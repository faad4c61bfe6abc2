"""The synthetic TV show's world: characters, objects, places, and the things people say.

Every visual fact (who, what object, where, which action) has a distinct look, so a video encoder can see it; some
facts are only said (moods, plans, favourite foods), so only the subtitles carry them.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Character:
    name: str
    shirt: RGB
    pants: RGB
    pronoun: str  # "he" | "she"


@dataclass(frozen=True)
class Thing:
    name: str
    color: RGB
    shape: str  # "box" | "disc" | "tall" | "flat" | "cup"


@dataclass(frozen=True)
class Place:
    name: str
    wall: RGB
    floor: RGB
    props: tuple[tuple[int, int, int, int, RGB], ...]  # (x0, y0, x1, y1, colour) rectangles at 160x120


CHARACTERS = (
    Character("Alice", (220, 40, 40), (60, 30, 30), "she"),
    Character("Bob", (40, 80, 220), (30, 30, 70), "he"),
    Character("Carol", (40, 170, 60), (40, 60, 40), "she"),
    Character("Dave", (235, 205, 40), (90, 80, 20), "he"),
    Character("Eve", (170, 60, 200), (60, 30, 70), "she"),
    Character("Frank", (30, 190, 200), (20, 60, 70), "he"),
)

THINGS = (
    Thing("cup", (245, 245, 245), "cup"),
    Thing("book", (130, 70, 25), "flat"),
    Thing("phone", (15, 15, 15), "tall"),
    Thing("ball", (255, 140, 0), "disc"),
    Thing("box", (205, 175, 120), "box"),
    Thing("apple", (120, 220, 40), "disc"),
    Thing("hat", (255, 105, 180), "box"),
    Thing("bottle", (0, 110, 110), "tall"),
)

PLACES = (
    Place("kitchen", (235, 225, 190), (150, 120, 90), ((4, 40, 40, 78, (200, 200, 205)), (120, 20, 150, 78, (230, 230, 240)))),
    Place("office", (180, 190, 200), (90, 90, 100), ((10, 15, 60, 45, (150, 200, 240)), (100, 55, 155, 78, (110, 80, 50)))),
    Place("park", (150, 200, 250), (80, 160, 70), ((20, 30, 34, 78, (100, 70, 40)), (8, 10, 46, 36, (30, 120, 40)))),
    Place("cafe", (120, 60, 50), (200, 180, 150), ((30, 60, 60, 78, (90, 50, 30)), (110, 60, 140, 78, (90, 50, 30)))),
    Place("bedroom", (200, 170, 210), (120, 90, 120), ((90, 55, 156, 78, (240, 240, 250)), (5, 20, 30, 50, (250, 230, 120)))),
)

# Said, never shown: the text-only facts.
MOODS = ("happy", "tired", "hungry", "nervous", "bored", "excited", "sleepy", "angry")
FOODS = ("pizza", "pasta", "sushi", "tacos", "soup", "salad", "noodles", "curry")
CITIES = ("Paris", "Tokyo", "Lima", "Cairo", "Oslo", "Delhi", "Rome", "Boston")

ACTIONS = ("enter", "leave", "walk", "pick_up", "put_down", "give", "wave", "jump")

# Third-person present-tense phrases for descriptions; {a} actor, {o} object, {t} target, {p} place.
VERB = {
    "enter": "walks into the {p}",
    "leave": "leaves the {p}",
    "walk": "walks across the room",
    "pick_up": "picks up the {o}",
    "put_down": "puts the {o} down",
    "give": "gives the {o} to {t}",
    "wave": "waves",
    "jump": "jumps",
}
PARAPHRASE = {
    "enter": "{a} comes into the {p}.",
    "leave": "{a} walks out of the {p}.",
    "walk": "{a} moves to the other side.",
    "pick_up": "{a} grabs the {o} from the floor.",
    "put_down": "{a} sets the {o} on the floor.",
    "give": "{a} hands {t} the {o}.",
    "wave": "{a} raises a hand and waves.",
    "jump": "{a} jumps up and down.",
}
# What the actor says during the action (words like the object or place are visible in the frames).
ACTOR_LINES = {
    "enter": ("Hello, I am back in the {p}.", "Hi, this {p} looks nice."),
    "leave": ("I have to go now.", "See you later, I am leaving."),
    "walk": ("Let me go over there.", "I will stand here."),
    "pick_up": ("I will take the {o}.", "This {o} is mine now."),
    "put_down": ("I am leaving the {o} here.", "I do not need this {o}."),
    "give": ("Here {t}, take the {o}.", "{t}, this {o} is for you."),
    "wave": ("Hi everyone!", "Hello there!"),
    "jump": ("Look how high I can jump!", "Jumping is fun!"),
}
# What someone else says about the action (the actor's name is visible in the frames).
OTHER_LINES = {
    "enter": ("Welcome to the {p}, {a}.",),
    "leave": ("Bye {a}!",),
    "walk": ("Where are you going, {a}?",),
    "pick_up": ("{a}, put my {o} back!", "Why do you need the {o}, {a}?"),
    "put_down": ("Thanks for putting the {o} down, {a}.",),
    "give": ("That was kind, {a}.",),
    "wave": ("Why are you waving, {a}?",),
    "jump": ("Stop jumping, {a}!",),
}
CHAT = {
    # topic: (spoken line, t-query description, QA question, answer pool); {a} speaker, {pr} pronoun, {x} value
    "mood": ("I feel {x} today.", "{a} says {pr} feels {x}.", "How does {a} say {pr} feels?", MOODS),
    "food": ("My favourite food is {x}.", "{a} says {pr} loves {x}.", "Which food does {a} say {pr} loves?", FOODS),
    "city": ("Tomorrow I will fly to {x}.", "{a} says {pr} will fly to {x}.", "Where does {a} say {pr} will fly?", CITIES),
}
