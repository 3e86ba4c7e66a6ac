"""`pgarena claims`: the seed documents' performance claims, tested on this machine."""
