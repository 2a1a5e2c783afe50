"""The parts of ``benchmarks/http.py`` (``./dev bench http``)."""
