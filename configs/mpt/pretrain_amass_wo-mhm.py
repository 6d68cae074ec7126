# Table 3c: pre-training without Masked Heatmap Modeling (no joint masking, jitter or heatmap noise).
_base_ = ['./pretrain_amass.py']

train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='RandomVirtualCamera', num_views={{_base_.num_views}},
         input_size={{_base_.heatmap_size}}, random_view=True),
    dict(type='MaskedHeatmapModeling', enabled=False),
    dict(type='PackMeshInputs'),
]))
