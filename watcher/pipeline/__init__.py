"""The pure middle of the flow: bytes -> Message -> Match -> Outcome -> transitions."""
