"""An app that exists only in tests, installed for a while by the `registry_app` fixture: it
adds a job kind, a periodic task, a queue start-up hook and a live event through the
registries alone, proving that jobs/ and live/ need no line changed for a new app."""
