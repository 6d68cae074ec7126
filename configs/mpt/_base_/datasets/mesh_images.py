# Image pipelines of the mesh-image datasets (METRO TSV, SPIN npz, mmhuman3d HumanData; MeshImageDataset
# detects the format from ann_file). METRO / SPIN's crop: a square of 200 * scale pixels around the
# annotated centre, resized to 224 x 224; training adds their augmentation (flip 0.5, rotation
# clip(30 N(0,1), +-60) with p 0.4, scale clip(1 + 0.25 N(0,1)), per-channel pixel noise U(0.6, 1.4)).
# ImageNet mean / std normalisation and the ground-truth meshes (SMPL of the annotated parameters,
# batched on the model's device) are done by MeshImagePreprocessor.
image_size = (224, 224)
image_train_pipeline = [
    dict(type='LoadMeshImage'),
    dict(type='MeshImageCrop', input_size=image_size, augment=True),
    dict(type='PackMeshInputs'),
]
image_test_pipeline = [
    dict(type='LoadMeshImage'),
    dict(type='MeshImageCrop', input_size=image_size, augment=False),
    dict(type='PackMeshInputs'),
]
