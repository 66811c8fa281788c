-- Drives the plugin as a user would, inside headless Neovim: a scenario is a coroutine stepped from the
-- event loop (so Neovim's loop and the LSP client keep running while it waits), keys go in through
-- nvim_input at idle moments, and vim.notify / vim.ui.select / vim.ui.input are replaced by recorders.
-- The outcome is written as JSON to $SWITCHBOARD_TEST_RESULT, then Neovim quits.
local T = {}

T.notes = {} -- every vim.notify: { msg, level }
T.selects = {} -- every vim.ui.select: { prompt, items (formatted) }
T.choosers = {} -- queued: fn(items, formatted) -> index or nil
T.inputs = {} -- queued answers for vim.ui.input

vim.notify = function(msg, level)
  table.insert(T.notes, { msg = tostring(msg), level = level or vim.log.levels.INFO })
end

vim.ui.select = function(items, opts, on_choice)
  local format = opts.format_item or tostring
  local formatted = vim.tbl_map(format, items)
  table.insert(T.selects, { prompt = opts.prompt, items = formatted })
  local chooser = table.remove(T.choosers, 1)
  local index = chooser and chooser(items, formatted)
  vim.schedule(function()
    on_choice(index and items[index] or nil, index)
  end)
end

vim.ui.input = function(_, on_confirm)
  local answer = table.remove(T.inputs, 1)
  vim.schedule(function()
    on_confirm(answer)
  end)
end

local function fail(message)
  error(message, 0)
end

-- Resumes the scenario after `ms` of Neovim running freely.
function T.sleep(ms)
  local co = coroutine.running()
  vim.defer_fn(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      T.finish(false, err)
    end
  end, ms)
  coroutine.yield()
end

-- Waits until cond() is truthy (polling every 20 ms while Neovim runs); fails with `what` after `timeout`.
function T.wait(cond, what, timeout)
  local deadline = vim.uv.now() + (timeout or 20000)
  while true do
    local ok, value = pcall(cond)
    if ok and value then
      return value
    end
    if vim.uv.now() > deadline then
      fail('timed out waiting for ' .. what .. (ok and '' or (' (last error: ' .. tostring(value) .. ')')))
    end
    T.sleep(20)
  end
end

-- Types keys as a terminal would, then lets Neovim process them while idle.
function T.keys(keys)
  vim.api.nvim_input(keys)
  T.sleep(60)
end

-- <C-c> as a typed key that reaches mappings. Through nvim_input from inside this (timer) callback it is
-- taken as an interrupt and never reaches the chat's mapping; a user presses it while Neovim idles, which
-- typeahead reproduces.
function T.ctrl_c()
  vim.api.nvim_feedkeys(vim.keycode('<C-c>'), 'mt', false)
  T.sleep(60)
end

function T.lines(buf)
  return vim.api.nvim_buf_get_lines(buf or 0, 0, -1, false)
end

function T.text(buf)
  return table.concat(T.lines(buf), '\n')
end

function T.ok(cond, message)
  if not cond then
    fail(message)
  end
end

function T.eq(actual, expected, what)
  if not vim.deep_equal(actual, expected) then
    fail(('%s: expected %s, got %s'):format(what, vim.inspect(expected), vim.inspect(actual)))
  end
end

function T.contains(haystack, needle, what)
  if not haystack:find(needle, 1, true) then
    fail(('%s: %q not found in:\n%s'):format(what or 'text', needle, haystack))
  end
end

function T.lacks(haystack, needle, what)
  if haystack:find(needle, 1, true) then
    fail(('%s: %q should not be in:\n%s'):format(what or 'text', needle, haystack))
  end
end

function T.notified(needle)
  for _, n in ipairs(T.notes) do
    if n.msg:find(needle, 1, true) then
      return n
    end
  end
end

function T.wait_notified(needle, timeout)
  return T.wait(function()
    return T.notified(needle)
  end, 'a notification with ' .. vim.inspect(needle), timeout)
end

-- Picks, in the next vim.ui.select, the first item whose formatted text contains `needle`.
function T.choose(needle)
  table.insert(T.choosers, function(_, formatted)
    for i, text in ipairs(formatted) do
      if text:find(needle, 1, true) then
        return i
      end
    end
  end)
end

function T.chat()
  return require('switchboard.chat').current(vim.fn.getcwd())
end

function T.chat_buf()
  local chat = T.chat()
  return chat and chat.buf
end

-- Types a prompt into the chat's prompt area and sends it with <CR> in normal mode.
function T.send(prompt)
  local chat = T.wait(T.chat, 'the chat')
  vim.api.nvim_set_current_win(chat:window())
  require('switchboard.transcript').set_input(chat.buf, prompt)
  chat:focus_prompt(false)
  local sent = chat.sent or 0
  T.keys('<Esc><CR>')
  T.wait(function()
    return (chat.sent or 0) > sent
  end, 'the message to be sent', 5000)
  return chat
end

function T.wait_idle(chat, timeout)
  T.wait(function()
    return chat.busy == nil
  end, 'the answer to finish', timeout)
end

function T.wait_ready()
  local server = require('switchboard.server')
  return T.wait(function()
    return server.client(vim.fn.getcwd()) and require('switchboard.status').usage
  end, 'the server to be initialized')
end

local result_path = assert(os.getenv('SWITCHBOARD_TEST_RESULT'), 'SWITCHBOARD_TEST_RESULT is not set')
local finished = false

local function lua_errors()
  local messages = vim.api.nvim_exec2('messages', { output = true }).output
  local found = {}
  for _, line in ipairs(vim.split(messages, '\n')) do
    if line:find('E5108', 1, true) or line:find('E5560', 1, true) or line:find('stack traceback', 1, true)
      or line:find('Error executing', 1, true) then
      table.insert(found, line)
    end
  end
  -- Errors Neovim reports through vim.notify (e.g. from an LSP handler) land in the recorder.
  for _, note in ipairs(T.notes) do
    if note.msg:find('stack traceback', 1, true) or note.msg:find('E5108', 1, true)
      or note.msg:find('Error executing', 1, true) then
      table.insert(found, 'notify: ' .. note.msg)
    end
  end
  if vim.v.errmsg ~= '' then
    table.insert(found, 'v:errmsg: ' .. vim.v.errmsg)
  end
  return found
end

function T.finish(ok, err)
  if finished then
    return
  end
  finished = true
  local errors = lua_errors()
  local file = assert(io.open(result_path, 'w'))
  file:write(vim.json.encode({
    ok = ok and #errors == 0,
    error = err and tostring(err) or vim.NIL,
    lua_errors = errors,
    notes = T.notes,
    selects = T.selects,
    buffer = T.chat_buf() and T.lines(T.chat_buf()) or vim.NIL,
  }))
  file:close()
  pcall(require('switchboard.server').stop_all)
  vim.defer_fn(function()
    vim.cmd('qall!')
  end, 200)
end

function T.run(scenario, timeout)
  vim.defer_fn(function()
    T.finish(false, ('scenario timed out after %d s'):format(timeout / 1000))
  end, timeout)
  local co = coroutine.create(function()
    scenario(T)
  end)
  local ok, err = coroutine.resume(co)
  if not ok then
    T.finish(false, debug.traceback(co, err))
    return
  end
  local function watch()
    if coroutine.status(co) == 'dead' then
      T.finish(true)
    else
      vim.defer_fn(watch, 20)
    end
  end
  watch()
end

return T
