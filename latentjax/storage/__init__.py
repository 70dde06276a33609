"""What latentjax writes to disk: files that are complete or absent (:mod:`.files`) and run
folders that record what they hold and who may resume them (:mod:`.runs`)."""
