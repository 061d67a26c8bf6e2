"""The paper-trading loop: the engine, its prediction sources (replay, live) and the runner."""
