-- Outpost tilemaker profile (tilemaker 2.2 Lua API): a muted CAD basemap.
-- Layer and attribute names are the contract with the console's map style (see the team
-- contract "Area pack"); keep them in step with config.json's vector_layers.

function Set(list)
	local set = {}
	for _, l in ipairs(list) do set[l] = true end
	return set
end

node_keys = { "place", "amenity", "shop", "tourism", "office", "emergency", "addr:housenumber", "leisure", "healthcare" }

-- Points of interest: class -> min zoom. Police, fire and hospitals show first.
poiZoom = {
	police = 12, fire_station = 12, hospital = 12, clinic = 13, townhall = 13, school = 13,
	pharmacy = 13, fuel = 13, university = 13, college = 13, kindergarten = 14, bank = 14,
	post_office = 14, restaurant = 14, cafe = 14, bar = 14, fast_food = 14, pub = 14, hotel = 14,
	library = 14, place_of_worship = 14, parking = 14, doctors = 14, dentist = 14,
	bus_station = 14, marketplace = 14, courthouse = 14, prison = 14, embassy = 14, shop = 14,
	museum = 14, attraction = 14, information = 14, guest_house = 14, hostel = 14, camp_site = 14
}

placeZoom = {
	country = 4, state = 5, city = 6, town = 8, village = 10, suburb = 11, hamlet = 12,
	neighbourhood = 13, locality = 13, quarter = 12, isolated_dwelling = 14
}
placeClass = { quarter = "suburb", isolated_dwelling = "locality" }

-- highway=* -> road class and the zoom it appears at.
roadClass = {
	motorway = "motorway", motorway_link = "motorway", trunk = "trunk", trunk_link = "trunk",
	primary = "primary", primary_link = "primary", secondary = "secondary", secondary_link = "secondary",
	tertiary = "tertiary", tertiary_link = "tertiary",
	residential = "minor", unclassified = "minor", living_street = "minor", road = "minor", pedestrian = "minor",
	service = "service", track = "track",
	footway = "path", path = "path", cycleway = "path", steps = "path", bridleway = "path"
}
roadZoom = { motorway = 6, trunk = 6, primary = 8, secondary = 9, tertiary = 10, minor = 12, service = 13, track = 13, path = 14 }

landuseClasses = Set { "residential", "commercial", "industrial", "retail", "forest", "grass", "meadow",
	"farmland", "farmyard", "cemetery", "allotments", "orchard", "vineyard", "recreation_ground",
	"railway", "military", "quarry", "construction", "brownfield", "greenfield", "village_green", "garages" }
naturalLanduse = { wood = "wood", scrub = "scrub", grassland = "grass", heath = "heath", scree = "rock",
	bare_rock = "rock", glacier = "glacier", wetland = "wetland", beach = "sand", sand = "sand" }
leisureLanduse = { park = "park", pitch = "pitch", golf_course = "golf_course", garden = "park",
	playground = "playground", sports_centre = "sports_centre", stadium = "stadium" }
waterwayClasses = Set { "river", "stream", "canal", "ditch", "drain" }

function setNames(obj)
	local name = obj:Find("name")
	if name ~= "" then obj:Attribute("name", name) end
	local zh = obj:Find("name:zh")
	if zh ~= "" then obj:Attribute("name_zh", zh) end
	local en = obj:Find("name:en")
	if en ~= "" then obj:Attribute("name_en", en) end
end

function poiClassOf(obj)
	local amenity = obj:Find("amenity")
	if amenity ~= "" then return amenity end
	if obj:Find("emergency") == "fire_station" then return "fire_station" end
	local shop = obj:Find("shop")
	if shop ~= "" then return "shop" end
	local tourism = obj:Find("tourism")
	if tourism ~= "" then return tourism end
	local healthcare = obj:Find("healthcare")
	if healthcare ~= "" then return healthcare end
	local office = obj:Find("office")
	if office ~= "" then
		if office == "government" then return "townhall" end
		return "office"
	end
	local leisure = obj:Find("leisure")
	if leisure == "sports_centre" or leisure == "stadium" then return leisure end
	return ""
end

function writePoi(obj, asCentroid)
	local class = poiClassOf(obj)
	if class == "" then return false end
	local name = obj:Find("name")
	local mz = poiZoom[class]
	if mz == nil then
		if name == "" then return false end
		mz = 14
	end
	if asCentroid then obj:LayerAsCentroid("poi") else obj:Layer("poi", false) end
	obj:Attribute("class", class)
	setNames(obj)
	obj:MinZoom(mz)
	return true
end

function node_function(node)
	local place = node:Find("place")
	if place ~= "" and placeZoom[place] ~= nil and node:Find("name") ~= "" then
		node:Layer("place", false)
		node:Attribute("class", placeClass[place] or place)
		setNames(node)
		node:MinZoom(placeZoom[place])
		return
	end
	if writePoi(node, false) then return end
	local housenumber = node:Find("addr:housenumber")
	if housenumber ~= "" then
		node:Layer("housenumber", false)
		node:Attribute("housenumber", housenumber)
	end
end

function relation_scan_function(relation)
	if relation:Find("type") == "boundary" and relation:Find("boundary") == "administrative" then
		relation:Accept()
	end
end

function way_function(way)
	local highway = way:Find("highway")
	local waterway = way:Find("waterway")
	local building = way:Find("building")
	local natural = way:Find("natural")
	local landuse = way:Find("landuse")
	local leisure = way:Find("leisure")
	local isClosed = way:IsClosed()

	-- Administrative boundaries, from relations and from tagged ways.
	local admin_level = 99
	local isBoundary = false
	while true do
		local rel = way:NextRelation()
		if not rel then break end
		isBoundary = true
		admin_level = math.min(admin_level, tonumber(way:FindInRelation("admin_level")) or 99)
	end
	if way:Find("boundary") == "administrative" then
		isBoundary = true
		admin_level = math.min(admin_level, tonumber(way:Find("admin_level")) or 99)
	end
	if isBoundary and admin_level < 99 and way:Find("maritime") ~= "yes" then
		local mz = 0
		if admin_level >= 3 and admin_level < 5 then mz = 4
		elseif admin_level >= 5 and admin_level < 7 then mz = 8
		elseif admin_level >= 7 then mz = 10 end
		way:Layer("boundary", false)
		way:AttributeNumeric("admin_level", admin_level)
		way:MinZoom(mz)
	end

	-- Roads.
	if highway ~= "" and way:Find("area") ~= "yes" then
		local class = roadClass[highway]
		if class ~= nil then
			way:Layer("road", false)
			way:Attribute("class", class)
			setNames(way)
			local ref = way:Find("ref")
			if ref ~= "" then way:Attribute("ref", ref) end
			local brunnel = ""
			local bridge = way:Find("bridge")
			local tunnel = way:Find("tunnel")
			if bridge ~= "" and bridge ~= "no" then brunnel = "bridge"
			elseif tunnel ~= "" and tunnel ~= "no" then brunnel = "tunnel" end
			way:Attribute("brunnel", brunnel)
			local oneway = way:Find("oneway")
			if oneway == "yes" or oneway == "1" or oneway == "true" or oneway == "-1"
				or way:Find("junction") == "roundabout" or highway == "motorway" then
				way:AttributeNumeric("oneway", 1)
			else
				way:AttributeNumeric("oneway", 0)
			end
			way:MinZoom(roadZoom[class])
		end
	end

	-- Waterways (lines).
	if waterwayClasses[waterway] and not isClosed then
		way:Layer("waterway", false)
		local wc = waterway
		if wc == "drain" then wc = "ditch" end
		way:Attribute("class", wc)
		local name = way:Find("name")
		if name ~= "" then way:Attribute("name", name) end
		if wc == "river" then way:MinZoom(10) else way:MinZoom(12) end
	end

	if not isClosed then return end

	-- Water areas.
	local waterClass = ""
	if natural == "water" then
		waterClass = way:Find("water")
		if waterClass == "" then waterClass = "lake" end
	elseif landuse == "reservoir" or landuse == "basin" then waterClass = landuse
	elseif waterway == "riverbank" then waterClass = "river"
	elseif waterway == "dock" then waterClass = "dock"
	elseif leisure == "swimming_pool" then waterClass = "swimming_pool" end
	if waterClass ~= "" then
		way:Layer("water", true)
		way:Attribute("class", waterClass)
		if waterClass == "swimming_pool" then way:MinZoom(14) else way:MinZoom(6) end
		return
	end

	-- Land use and land cover.
	local lu = ""
	if landuseClasses[landuse] then lu = landuse
	elseif landuse == "grass" or landuse == "village_green" then lu = "grass"
	elseif naturalLanduse[natural] ~= nil then lu = naturalLanduse[natural]
	elseif leisureLanduse[leisure] ~= nil then lu = leisureLanduse[leisure]
	elseif way:Find("amenity") == "grave_yard" then lu = "cemetery"
	elseif way:Find("amenity") == "school" then lu = "school"
	elseif way:Find("amenity") == "hospital" then lu = "hospital" end
	if lu ~= "" then
		way:Layer("landuse", true)
		way:Attribute("class", lu)
		local area = way:Area()
		if area > 1000000 then way:MinZoom(8)
		elseif area > 100000 then way:MinZoom(10)
		elseif area > 10000 then way:MinZoom(12)
		else way:MinZoom(13) end
	end

	-- Buildings.
	if building ~= "" and building ~= "no" then
		way:Layer("building", true)
		way:MinZoom(13)
	end

	-- POIs drawn from areas (hospitals, schools, police stations mapped as buildings).
	writePoi(way, true)

	local housenumber = way:Find("addr:housenumber")
	if housenumber ~= "" then
		way:LayerAsCentroid("housenumber")
		way:Attribute("housenumber", housenumber)
	end
end
