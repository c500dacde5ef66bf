-- The world pass reads only the Natural Earth shapefiles named in config-world.json;
-- OSM objects are ignored here (the area pass, process.lua, draws them).
node_keys = {}
function node_function(node)
end
function way_function(way)
end
