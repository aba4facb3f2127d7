"""Settings package: base (shared), local (dev defaults), test, production."""
