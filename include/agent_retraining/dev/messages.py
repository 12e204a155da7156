"""What the simulated users of a language-model agent write, and the embedding the agent computes from it.

Each message has a hidden intent (the truth's reward depends on it) and is written from that intent's templates
in one of three languages, with greetings, sign-offs, padding of varying length and typos, so the intent is
recoverable from the words but not from any one fixed string. The agent's embedding is what a multilingual
sentence encoder gives: close for messages of one intent whatever their language, with some noise, and unit
length.
"""

from __future__ import annotations

import numpy as np

INTENTS = {
    "refund": ("I want a refund for order {n}, it never arrived",
               "Ich möchte eine Rückerstattung für Bestellung {n}",
               "Quiero un reembolso del pedido {n}, nunca llegó"),
    "password": ("I can't log in, please reset my password",
                 "Ich kann mich nicht anmelden, bitte Passwort zurücksetzen",
                 "No puedo iniciar sesión, restablezcan mi contraseña"),
    "bug": ("The app crashes every time I open the {thing} page",
            "Die App stürzt ab, wenn ich die Seite {thing} öffne",
            "La aplicación se cierra al abrir la página {thing}"),
    "how_to": ("How do I export my data as {fmt}?",
               "Wie exportiere ich meine Daten als {fmt}?",
               "¿Cómo exporto mis datos en formato {fmt}?"),
    "cancel": ("Please cancel my subscription before the next bill",
               "Bitte kündigen Sie mein Abonnement zum Monatsende",
               "Por favor cancelen mi suscripción antes del próximo cobro"),
    "outage": ("Your service is down, nothing loads since this morning",
               "Der Dienst ist ausgefallen, seit heute früh lädt nichts",
               "El servicio está caído, no carga nada desde esta mañana"),
    "invoice": ("I need a copy of the invoice for {month}",
                "Ich brauche eine Kopie der Rechnung für {month}",
                "Necesito una copia de la factura de {month}"),
    "complaint": ("This is unacceptable, I will talk to my lawyer",
                  "Das ist inakzeptabel, ich gehe zu meinem Anwalt",
                  "Esto es inaceptable, hablaré con mi abogado"),
}  # fmt: skip
LANGUAGES = ("en", "de", "es")
LANGUAGE_MIX = (0.6, 0.25, 0.15)
GREETINGS = ("", "Hi, ", "Hello team, ", "Hallo, ", "Hola, ", "hey ", "Dear support, ")
SIGN_OFFS = ("", " Thanks!", " thx", " Danke.", " Gracias", " asap!!", " 🙏", " (sent from my phone)")
PADDING = " I have been a customer for years and this is the first time I write to you."
SLOTS = {"n": lambda rng: f"#{rng.integers(10_000, 99_999)}", "thing": lambda rng: rng.choice(["settings", "billing",
         "profile", "Berichte", "informes"]), "fmt": lambda rng: rng.choice(["CSV", "PDF", "Excel"]),
         "month": lambda rng: rng.choice(["March", "Oktober", "julio", "2026-11"])}  # fmt: skip
TYPO_RATE = 0.3  # share of messages with one typo (two letters swapped or one dropped)
ENCODER_NOISE = 0.6  # spread of a message's embedding around its intent's direction, against 1 for the intent


def _typo(text: str, rng: np.random.Generator) -> str:
    at = int(rng.integers(0, max(1, len(text) - 1)))
    if rng.random() < 0.5:
        return text[:at] + text[at + 1 : at + 2] + text[at : at + 1] + text[at + 2 :]
    return text[:at] + text[at + 1 :]


def messages(intents: np.ndarray, languages: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One message per row, from its intent's template in its language."""
    names = list(INTENTS)
    written = []
    for intent, language in zip(intents, languages, strict=True):
        text = INTENTS[names[intent]][language]
        for slot, fill in SLOTS.items():
            if "{" + slot + "}" in text:
                text = text.replace("{" + slot + "}", str(fill(rng)))
        text = str(rng.choice(GREETINGS)) + text + PADDING * int(rng.geometric(0.6) - 1) + str(rng.choice(SIGN_OFFS))
        written.append(_typo(text, rng) if rng.random() < TYPO_RATE else text)
    return written


def encoder(dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The simulated sentence encoder's direction per intent and per language (unit vectors)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(len(INTENTS) + len(LANGUAGES), dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions[: len(INTENTS)], directions[len(INTENTS) :]


def embeddings(intents: np.ndarray, languages: np.ndarray, dim: int, seed: int, rng: np.random.Generator):
    """Unit-length embeddings: the intent's direction, a little of the language's, and noise."""
    by_intent, by_language = encoder(dim, seed)
    vectors = by_intent[intents] + 0.3 * by_language[languages]
    vectors += rng.normal(scale=ENCODER_NOISE / np.sqrt(dim), size=vectors.shape)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
