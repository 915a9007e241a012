"""`winit sweep`: a grid of training runs, on local workers or a Ray cluster, resumable.

grid.py reads the grid and validates every trial's config; trial.py runs one trial (a
`winit train` session whose files come back as data); outputs.py owns the sweep's
directory (finding it again, locking it, writing trials and results) and runs the
trials; ray.py sends them to Ray; results.py summarizes them; view.py renders them.
"""
