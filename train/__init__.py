"""curate.train: trainers on TRL / PEFT / bitsandbytes that train from dataset versions."""
