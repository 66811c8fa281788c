-- The chat's window: a vertical or horizontal split, or a float.
local M = {}

local function size(value, total)
  if value > 1 then
    return math.floor(value)
  end
  return math.max(10, math.floor(total * value))
end

-- The window showing `buf` in this tab page.
function M.find(buf)
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == buf then
      return win
    end
  end
end

-- Focuses `buf`'s window, or opens one with the layout of `opts` (the chat options).
function M.show(buf, opts)
  local win = M.find(buf)
  if win then
    vim.api.nvim_set_current_win(win)
    return win
  end
  if opts.layout == 'float' then
    local width = size(opts.width, vim.o.columns)
    local height = size(opts.height, vim.o.lines)
    win = vim.api.nvim_open_win(buf, true, {
      relative = 'editor',
      width = width,
      height = height,
      row = math.floor((vim.o.lines - height) / 2) - 1,
      col = math.floor((vim.o.columns - width) / 2),
      border = opts.border,
      title = ' Switchboard ',
      title_pos = 'center',
    })
  elseif opts.layout == 'horizontal' then
    vim.cmd('botright split')
    win = vim.api.nvim_get_current_win()
    vim.api.nvim_win_set_buf(win, buf)
    vim.api.nvim_win_set_height(win, size(opts.height, vim.o.lines))
  else
    vim.cmd('botright vsplit')
    win = vim.api.nvim_get_current_win()
    vim.api.nvim_win_set_buf(win, buf)
    vim.api.nvim_win_set_width(win, size(opts.width, vim.o.columns))
  end
  local wo = vim.wo[win]
  wo.wrap, wo.linebreak, wo.number, wo.relativenumber = true, true, false, false
  wo.signcolumn, wo.foldenable, wo.spell = 'no', false, false
  return win
end

-- Closes `buf`'s window, unless it is the last one.
function M.hide(buf)
  local win = M.find(buf)
  if win and #vim.api.nvim_tabpage_list_wins(0) > 1 then
    vim.api.nvim_win_close(win, false)
  end
end

return M
