"""The language seam: every English word list and pattern the method uses, in one place.

Nothing here knows a corpus. A port to another language replaces this module: function
words, how a question opens, the chatter around it, and the words that say what kind of
fact a question asks for (a date, a figure, a person or place).
"""

from __future__ import annotations

import re

# Function and question words: they say how a question is asked, not what it is about, so
# neither keyword search nor word-level matching counts them. Not among them: "us" (the US
# outweighs the pronoun in questions) and the prepositions of time (after, before, during,
# until), which tell apart the periods a history is divided into.
STOPWORDS = frozenset("""
a about above again against all am an and any are aren't as at be because been
being below between both but by can could did didn't do does doesn't doing don't down
each either else ever few for from further get gets got had has have having he her here hers
herself him himself his how i if in into is isn't it it's its itself just let like may me might
more most much must my myself neither no nor not now of off on once only or other ought our ours
ourselves out over own please same say says she should so some still such tell than that the
their theirs them themselves then there these they this those through thus to too under up
upon very was wasn't way we were weren't what whatever when where whether which while who
whom whose why will with within without would you your yours yourself yourselves
""".split())

# ---------------------------------------------------------------- how a question opens

_AUXILIARY = (r"(is|are|was|were|do|does|did|can|could|should|would|will|has|have|had|may|"
              r"might|must)")
# A message that opens like this asks, with or without its question mark.
ASKS = re.compile(rf"^(how|what|what['’]?s|why|which|who|whom|whose|when|where|{_AUXILIARY})\b",
                  re.IGNORECASE)
VOWEL = re.compile(r"[aeiouy]")

# ---------------------------------------------------------------- chatter around a question

GREETING = re.compile(r"^(hi|hello|hey|hiya|greetings|good (morning|afternoon|evening|day)|"
                      r"dear [\w-]+)\b( there| all| everyone| team)?[\s,!.:;-]*", re.IGNORECASE)
THANKS = re.compile(r"[\s,;.!-]*\b(thanks|thank you|thx|many thanks|cheers)\b"
                    r"( (so|very) much| a lot| in advance)?[\s.!]*$", re.IGNORECASE)
REQUEST = re.compile(r"^(please[\s,]+)?((can|could|would|will) you( please)? (tell me|explain|"
                     r"describe|show me|let me know|help me understand)|i('d| would) like to "
                     r"know|i want to know|i wonder|i was wondering|i'm wondering|do you know|"
                     r"tell me|explain( to me)?|(quick|one|a|another|simple) question)\b"
                     r"( about)?[\s,:;-]*|^please[\s,]+", re.IGNORECASE)

# ---------------------------------------------------------------- a question about a whole text

# "What is this document about?", "Summarize the text": nothing may follow the gist word but
# "overall" and the like, so "What does the text say about THAAD?" is not such a question.
_DOCUMENT = r"(documents?|texts?|articles?|reports?|papers?|corpus|collection|files?)"
THE_DOCUMENT = re.compile(rf"\b(this|the|these|your)\s+{_DOCUMENT}\b", re.IGNORECASE)
_GIST = r"(summary|overview|gist|main (topic|idea|point|theme|subject)s?)"
GIST_AT_END = re.compile(rf"\b(about|cover|covers|discuss|discusses|describe|describes|{_GIST})"
                         r"(\s+(overall|in general|in short|in brief))?\s*[?.!]*$",
                         re.IGNORECASE)
GIST_OF_IT = re.compile(rf"\b{_GIST} of (this|the|these|your) {_DOCUMENT}\b", re.IGNORECASE)
SUMMARY_REQUEST = re.compile(rf"^(please\s+)?(summari[sz]e|tl;?dr|give (me )?(an? )?"
                             rf"(short |brief )?{_GIST})(\s+(of\s+)?(it|this|everything|"
                             rf"(this|the|these|your)\s+{_DOCUMENT}))?\s*[?.!]*$",
                             re.IGNORECASE)

# ---------------------------------------------------------------- what kind of fact is asked

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|"
           "december")
_DECADE_WORDS = "twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties"
# Words that place something in time: years, decades, centuries, months, eras, how often
# ("twice a day", "annually"), and a time told by an event ("after a general debate",
# "during the Cold War").
TIME_EXPRESSION = re.compile(
    rf"\b(c\.?|ca\.)?\s?(1[0-9]{{3}}|20[0-9]{{2}})s?\b|['’]?\b[0-9]0s\b|\b({_DECADE_WORDS})\b|"
    rf"\b[0-9]{{1,2}}(st|nd|rd|th) century\b|\b({_MONTHS})\b|\b(since|until|era|decades?|"
    rf"centur(y|ies)|years? (ago|later|earlier|after|before))\b|"
    rf"\b(after|before|during|following|prior to|upon) (a|an|the|its|their|his|her|this|that|"
    rf"each|every)\b|\b(daily|nightly|weekly|monthly|yearly|annually|(a|an|each|every|per) "
    rf"(day|night|week|month|year|morning|evening))\b", re.IGNORECASE)
# "When was…", "In what year…", "since when…": asks for a time. "When Washington revisits
# its commitments, does…" opens a clause instead: an auxiliary verb must follow "when".
ASKS_TIME = re.compile(rf"^(when\s+{_AUXILIARY}\b|in what year|what year|which year|"
                       rf"on what date|what date|since when|by when|until when)|"
                       rf"\b(what|which) (year|date|month|decade|century)\b", re.IGNORECASE)

NUMBER_WORDS = ("both two three four five six seven eight nine ten eleven twelve twenty thirty "
                "forty fifty hundred hundreds thousand thousands million millions billion "
                "billions dozen dozens percent half third quarter").split()
QUANTITY = re.compile(r"\b([0-9][0-9,.]*%?|" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
# ("How large/far/high…" may ask for a judgement, "how large a presence": not counted.)
ASKS_QUANTITY = re.compile(r"\bhow (many|much|expensive|costly|tall|deep|wide|heavy)\b|"
                           r"\bwhat (number|percentage|share|amount) of\b|"
                           r"\bwhat (did|does|do|will|would)\b[^?]{0,60}\bcost\b|"
                           r"\bwhat(’s|'s| is| was| are| were) the ([\w-]+ ){0,3}(cost|price|"
                           r"budget|population|size|number|amount|total|rate|percentage|"
                           r"salary|gdp|height|length|distance|temperature|speed|weight)s?\b",
                           re.IGNORECASE)
# "How many X does/are…": a figure answers it only if it counts X.
COUNTED = re.compile(r"\bhow many ((?:[\w-]+ ){1,3}?)(?:do|does|did|is|are|was|were|has|have|"
                     r"had|will|would|can|could|should|died|served)\b", re.IGNORECASE)
# A number written in a question: "1975", "the 80s", "3,000".
NUMBER = re.compile(r"\b[0-9][0-9,.]*\b")
# A decade, in full ("1980s": its century is group 1) or short ("the 80s", "’70s", "70's":
# which century a short one means is for the corpus to say, spelling.py).
DECADE = re.compile(r"(?:\b(1[0-9]|20)|['’]|\b)([0-9])0['’]?s\b")
# Small numbers are as often written out: "4 centres" may be "four centres" in the text.
SPELLED = dict(enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                         "thirteen fourteen fifteen sixteen seventeen eighteen nineteen "
                         "twenty".split()))
SPELLED[2] = "two|both|pair"            # "2 parties" is "both parties"

# Who/where/which questions name the kind of answer they want with one of these nouns
# ("Who was the president…", "Which city…"); the passages must use the noun to say.
ASKS_ENTITY = re.compile(r"^(who|whom|where)\b|\b(which|what)\b", re.IGNORECASE)
ROLE_OR_PLACE = re.compile(
    r"\b(presidents?|prime ministers?|ministers?|secretar(y|ies)|commanders?|generals?|"
    r"admirals?|ambassadors?|leaders?|chairm[ae]n|kings?|queens?|emperors?|spokesm[ae]n|"
    r"cit(y|ies)|towns?|villages?|provinces?|capitals?|ports?|islands?|streets?)\b",
    re.IGNORECASE)

# ---------------------------------------------------------------- names in running text

# A name: capitalized words inside a sentence (not its first word, which every sentence
# capitalizes), joined by "of" or "the" ("Status of Forces Agreement", "Court of Justice").
# A possessive's "'s" is not part of it.
_CAPITALIZED = r"[A-Z](?:[\w-]|['’](?!s\b))+"
_CAPITALIZED_RUN = re.compile(rf"(?<![\w'’-]){_CAPITALIZED}(?: (?:of |the )?{_CAPITALIZED})*")
_INSIDE_A_SENTENCE = re.compile(r"[a-z0-9,;:)]\s+$")


def names_in(text: str) -> list[str]:
    """The names a text uses, each time it uses one."""
    return [m.group(0) for m in _CAPITALIZED_RUN.finditer(text)
            if _INSIDE_A_SENTENCE.search(text, max(0, m.start() - 3), m.start())]


def asked_in(question: str, name: str) -> str:
    """A question set where a name is ("How is espresso made?" → "How is espresso made in
    Seoul?")."""
    return f"{question.rstrip(' ?.!')} in {name}?"


# ---------------------------------------------------------------- a follow-up in a conversation

# A message that leans on what was said before: a pronoun or a demonstrative with nothing in
# the message to refer to ("What were its main provisions?", "Why does that matter?"), or a
# fragment that continues the last question ("And in the 1980s?", "What about SOFA?",
# "Why?", "Tell me more"). "That" counts where it stands for something, not where it opens a
# clause ("the treaty that…"); "there" and "then" only at the end ("What happened then?"),
# not in "Is there a…".
REFERS_BACK = re.compile(
    r"\b(it|its|itself|they|them|their|theirs|themselves|he|him|his|she|hers|this|these|"
    r"those)\b|\b(there|then)(?=\s*[?.!]*$)|"
    r"\bthat\b(?=\s*[?.!,]|\s*$|\s+(?!(the|a|an|is|was|are|were|will|would|can|could|has|have|"
    r"had|it|they|he|she|we|you|i|there|this|these|those|which|who|did|does|do)\b)[a-z]+)|"
    r"\b(which|the other|another) ones?\b", re.IGNORECASE)
CONTINUES = re.compile(r"^(and|but|also|so|or|plus|what about|how about|what of|as for|"
                       r"tell me more|more|go on|why|how so|how come|really|and then)\b",
                       re.IGNORECASE)
