"""Benchmarks of the notification log console.

    make bench                  # every scenario at full size: a table + bench/results.json
    make bench-smoke            # every scenario tiny (part of make test, < 2 minutes)
    make bench-citus            # searches, sends, callbacks: one node vs Citus (bench/citus.py)
    python -m bench --only NAME # one scenario (plus its baseline's), --list shows them all
    python -m bench --set floor.duration=30 --loadgen python   # override a size / the tool

Run it through scripts/with-database.sh (as make does): DATABASE_URL when set, else a
throwaway embedded PostgreSQL. Either way the harness benchmarks in a database of its own,
"bench_<configured name>", created and migrated at the start and dropped at the end, never
in the configured one. Each row of the table is a figure (median and p95, with its unit) and
its ratio to the scenario's baseline row measured in the same run, under the machine (nproc,
PostgreSQL version, load generator). bench/harness.py documents the run step by step.

Adding a scenario
-----------------
Define it in any module of bench/ (e.g. bench/selectors.py): every module of the package
whose name does not start with "_" is imported by the harness, and @register adds the class.

    from bench.harness import BenchmarkError, Run, Scenario, register, time_calls

    @register
    class NaiveSearch(Scenario):
        name = "search.naive"           # its row's name; lowercase, digits, _ and .
        baseline = None                 # compared with itself: 1.00x
        description = "the console's search as a plain ORM filter"
        smoke_size = {"rows": 2_000, "repeat": 5}        # seconds, not minutes
        full_size = {"rows": 500_000, "repeat": 50}

        def setup(self, run: Run) -> None:   # untimed; self.size is the chosen size
            run.once(("logs", self.size["rows"]), lambda: seed_logs(self.size["rows"]))

        def measure(self, run: Run):
            return time_calls(lambda: list(naive_search("alice")), repeat=self.size["repeat"])

    @register
    class IndexedSearch(NaiveSearch):
        name = "search.indexed"
        baseline = "search.naive"       # vs baseline = its median / search.naive's median

        def measure(self, run: Run):
            return time_calls(lambda: list(indexed_search("alice")), repeat=self.size["repeat"])

The API (bench/harness.py has the details):

- Scenario: name, baseline (a row name, or None for itself), description, smoke_size and
  full_size (same keys; the chosen one is self.size, overridable with --set), and the hooks
  setup(run), measure(run), teardown(run). `--only search.indexed` also runs search.naive,
  so the ratio always has its baseline.
- measure returns a Measurement, or a dict of rows {"NAME": ..., "NAME.SUFFIX": ...} when one
  scenario measures several figures (floor returns "floor" and "floor.throughput").
- Measurement.from_samples(samples, unit, higher_is_better=False, baseline=None, note="")
  takes raw samples; time_calls(fn, repeat=, warmup=1, max_seconds=60) times calls in ms.
  Check your own result and raise BenchmarkError when it is wrong (a benchmark that gets a
  wrong answer fast must fail, in the smoke run too).
- Run: run.smoke, run.database_name (the ORM already points at it), run.defer(fn, *args)
  (called when the scenario ends, whatever happens), run.at_exit(fn, *args) (end of run),
  run.once(key, fn) (data shared between scenarios), run.tmpdir, run.subprocess_env() (the
  environment a child process needs to reach the run's database), run.loadgen.
- Over HTTP: bench.server.start_gunicorn(run, workers=, threads=, worker_class=) serves the
  project (and bench/urls.py) on 127.0.0.1 from the run's database and stops with the
  scenario; bench.loadgen.run_load(url, connections=, duration=, warmup=, ...) loads it
  from another process (wrk when installed, else Python). See bench/floor.py.

Rules: bound every loop by count and time; keep the smoke size to a few seconds (the whole
smoke run must stay under 2 minutes); only 127.0.0.1; start processes only through helpers
that register their shutdown (run.defer).
"""
