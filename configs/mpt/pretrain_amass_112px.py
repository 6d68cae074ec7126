# Table 10: 112 x 112 heatmaps (196 tokens of 8 x 8 patches) instead of 224 x 224.
_base_ = ['./pretrain_amass.py']

heatmap_size = (112, 112)
model = dict(data_preprocessor=dict(heatmap_size=heatmap_size), head=dict(input_size=heatmap_size))
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='RandomVirtualCamera', num_views={{_base_.num_views}}, input_size=heatmap_size,
         random_view=True),
    dict(type='MaskedHeatmapModeling'),
    dict(type='PackMeshInputs'),
]))
val_dataloader = dict(dataset=dict(pipeline=[
    dict(type='RandomVirtualCamera', num_views={{_base_.num_views}}, input_size=heatmap_size,
         random_view=False),
    dict(type='MaskedHeatmapModeling', enabled=False),
    dict(type='PackMeshInputs'),
]))
test_dataloader = val_dataloader
