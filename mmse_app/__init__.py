"""The application: the `mmse` command, the demo, report writing. It sits on both the core
(`mmse_model`) and the Ray adapter (`ray_jobs`); neither imports it."""
