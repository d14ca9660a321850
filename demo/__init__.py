"""The demo `make run` serves: the Demo account's catalogue, a seeded week and live sends.

It sits above the apps it fills (accounts, notifications, logs, insights) and nothing imports
it: the log's generator (logs/demo) only writes rows, this app puts a world around them.
"""
