"""Training: experiments, the pipeline, tracking and tuning."""
