"""English function words, question words included: they say how a question is asked, not
what it is about, so neither keyword search nor word-level matching counts them."""

STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before
being below between both but by can could did didn't do does doesn't doing don't down during
each either else ever few for from further get gets got had has have having he her here hers
herself him himself his how i if in into is isn't it it's its itself just let like may me might
more most much must my myself neither no nor not now of off on once only or other ought our ours
ourselves out over own please same say says she should so some still such tell than that the
their theirs them themselves then there these they this those through thus to too under until up
upon us very was wasn't way we were weren't what whatever when where whether which while who
whom whose why will with within without would you your yours yourself yourselves
""".split()) - {"us"}   # "US" the country outweighs "us" the pronoun in this kind of corpus
