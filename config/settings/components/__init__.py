"""Groups of settings that `config/settings/base.py` imports: each setting is declared in one place."""
