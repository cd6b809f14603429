package main

// Help of the flags that name a model to evaluate or embed with, shared by zeroshot, retrieval,
// embed and search.
const (
	checkpointHelp = "the model: a checkpoint (.safetensors written by pretrain; the model file alone will do), " +
		"a run directory (its latest checkpoint), an open_clip or OpenAI state dict (.safetensors; F32, F16 or BF16, " +
		"with or without module.), or a Hugging Face CLIPModel directory or model.safetensors"
	quickGELUHelp = "the weights use OpenAI's QuickGELU activation: needed for OpenAI's models given as a bare " +
		"state dict, which does not record it (clipgo checkpoints and Hugging Face config.json do)"
)
